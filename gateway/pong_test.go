package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestForgedPongIsIgnored: a user who sends the component an iq result
// with the id of a pending self-ping must not pass for the server's
// answer (it would hide a dead connection from the keep-alive, and
// confirm stanzas the server never took); the server's own answer still
// counts, and the ids cannot be guessed.
func TestForgedPongIsIgnored(t *testing.T) {
	const domain, gw = "example.test", "gw.example.test"
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     domain,
		Components: []testserver.Component{{Domain: gw, Secret: "s"}},
		Users:      []testserver.User{{Name: "mallory", Password: "pw"}},
	})
	g, _ := runGateway(t, p, gw)
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	m := xmpptest.Dial(t, dctx, p.C2SAddr, jid.MustParse("mallory@"+domain), "pw")

	// The gateway's ids: random, not a counter one can count along.
	ids := map[string]bool{}
	for range 3 {
		id, got, _, err := g.conn.selfPing(dctx)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-got: // the server's answer, from the component's domain
		case <-time.After(10 * time.Second):
			t.Fatalf("the server's answer to self-ping %s was not taken", id)
		}
		g.conn.pings.Delete(id)
		suffix := strings.TrimPrefix(id, "self-ping-")
		if len(suffix) < 22 || ids[id] {
			t.Errorf("self-ping id %q is guessable (want at least 128 random bits)", id)
		}
		ids[id] = true
	}

	// A pending ping whose id the user learnt or guessed.
	const pending = "self-ping-1"
	answered := make(chan struct{})
	g.conn.pings.Store(pending, answered)
	defer g.conn.pings.Delete(pending)
	m.SendRaw(t, `<iq type='result' to='`+gw+`' id='`+pending+`'/>`)
	m.SendRaw(t, `<iq type='error' to='`+gw+`' id='`+pending+`'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
	// The server routes mallory's stanzas in order: once this is answered,
	// the forged ones were read.
	if res := m.IQ(t, 10*time.Second, `<iq type='get' to='`+gw+`' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`); res.Type != "result" {
		t.Fatalf("ping: %s", res)
	}
	select {
	case <-answered:
		t.Fatal("an iq result from a user closed the gateway's self-ping")
	default:
	}
}
