package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
)

const (
	xmppDomain       = "example.test"
	passerelleDomain = "irc.example.test"
	passerelleSecret = "passerelle-bench-secret"
	biboumiDomain    = "biboumi.example.test"
	biboumiSecret    = "biboumi-bench-secret"
	password         = "bench-pw"
)

// env is what every scenario shares: one Prosody with both gateways as
// components, one ngircd, and the module's root for building.
type env struct {
	t    tb.TB
	root string
	xmpp *testserver.Prosody
	irc  *testserver.Ngircd
	// gatewayEnv is added to the gateways' environment.
	gatewayEnv []string
	// prof, when enabled, profiles Passerelle during the scenarios.
	prof profiler

	probeOnce sync.Once
	probe     *xmpptest.Client
	probeIDs  atomic.Uint64
	probed    chan string // ids of answered probes
}

// prosodyTuned says how the shared Prosody differs from its defaults.
const prosodyTuned = "Prosody: network_settings.nagle = false, so that no stanza it writes in pieces waits for a delayed ACK (~40 ms), for both gateways"

// ngircdRelaxed says what testserver.StartNgircd lifts.
const ngircdRelaxed = "ngircd: MaxPenaltyTime = 0 (no flood penalty), MaxConnectionsIP = 0, MaxJoins = 0"

// newEnv starts Prosody, with an account for every name, and ngircd.
func newEnv(t tb.TB, accounts []string) *env {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v (run from inside the module)", err)
	}
	e := &env{t: t, root: filepath.Dir(strings.TrimSpace(string(out))), probed: make(chan string, 64)}
	e.irc = testserver.StartNgircd(t, testserver.NgircdConfig{ServerName: "irc.test"})
	users := make([]testserver.User, len(accounts))
	for i, a := range accounts {
		users[i] = testserver.User{Name: a, Password: password}
	}
	e.xmpp = testserver.StartProsody(t, testserver.ProsodyConfig{
		Domain: xmppDomain,
		Components: []testserver.Component{
			{Domain: passerelleDomain, Secret: passerelleSecret},
			{Domain: biboumiDomain, Secret: biboumiSecret},
		},
		Users:   users,
		NoNagle: true,
	})
	return e
}

// dial logs an account in and sends its initial presence.
func (e *env) dial(t tb.TB, name string) *xmpptest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := xmpptest.Dial(t, ctx, e.xmpp.C2SAddr, jid.MustParse(name+"@"+xmppDomain+"/bench"), password)
	c.SendRaw(t, `<presence/>`)
	return c
}

// dialMany logs the accounts in, a few at a time.
func (e *env) dialMany(t tb.TB, names []string) []*xmpptest.Client {
	t.Helper()
	out := make([]*xmpptest.Client, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = e.dial(t, n)
		}()
	}
	wg.Wait()
	for i, c := range out {
		if c == nil {
			t.Fatalf("login of %s failed", names[i])
		}
	}
	return out
}

// ircUser connects a raw IRC client.
func (e *env) ircUser(t tb.TB, nick string) *irctest.Client {
	t.Helper()
	return irctest.Dial(t, e.irc.Addr(), nick)
}

// waitOnline asks the component domain for its disco#info every 5 ms
// through Prosody, which answers with an error while no component is
// connected, and returns the time from start to the sending of the first
// probe the gateway answered.
func (e *env) waitOnline(t tb.TB, domain string, start time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	e.probeOnce.Do(func() {
		e.probe = e.dial(t, "probe")
		e.probe.Filter(func(s *xmpptest.Stanza) bool {
			if s.XMLName.Local == "iq" && s.Type == "result" && strings.HasPrefix(s.ID, "probe-") {
				select {
				case e.probed <- s.ID:
				default:
				}
			}
			return false
		})
	})
	// Drain answers to earlier probes.
	for len(e.probed) > 0 {
		<-e.probed
	}
	sent := map[string]time.Time{}
	deadline := time.After(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		id := fmt.Sprintf("probe-%d", e.probeIDs.Add(1))
		sent[id] = time.Now()
		e.probe.SendRaw(t, `<iq type='get' id='`+id+`' to='`+domain+`'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		select {
		case id := <-e.probed:
			if at, ok := sent[id]; ok {
				return at.Sub(start)
			}
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s not online within %v", domain, timeout)
		}
	}
}

// joinPresence is the presence that joins a room as nick.
func joinPresence(room, nick string) string {
	return `<presence to='` + room + `/` + nick + `'><x xmlns='http://jabber.org/protocol/muc'/></presence>`
}

// isSelfPresence reports whether s is the user's own presence in a room
// (status 110), which ends a join.
func isSelfPresence(s *xmpptest.Stanza) bool {
	return s.XMLName.Local == "presence" && s.Type == "" &&
		(strings.Contains(s.Inner, `code="110"`) || strings.Contains(s.Inner, `code='110'`))
}

// join joins the room as nick and waits for the self-presence.
func join(t tb.TB, c *xmpptest.Client, room, nick string) {
	t.Helper()
	c.SendRaw(t, joinPresence(room, nick))
	s := c.Expect(t, 60*time.Second, func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "presence" && strings.HasPrefix(strings.ToLower(s.From), strings.ToLower(room)+"/") &&
			(isSelfPresence(s) || s.Type == "error")
	})
	if s.Type == "error" {
		t.Fatalf("joining %s: %s", room, s)
	}
}
