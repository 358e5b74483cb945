package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// hangupNet is the network the "testnet-hangup" kind last built, for the
// test to look at.
var hangupNet atomic.Pointer[testnet.Network]

func init() {
	kinds["testnet-hangup"] = func(config.Options, *slog.Logger) (transports.Transport, error) {
		n := testnet.New()
		n.AddAccount("legacy", "pw")
		hangupNet.Store(n)
		return n, nil
	}
}

// TestHangupEndsWithdrawnSessions runs the real command against a real
// XMPP server: once SIGHUP reloads an allow-list without the user's
// domain, the user is logged out of the legacy network and told why, and
// is not logged in again.
func TestHangupEndsWithdrawnSessions(t *testing.T) {
	const gw, user = "gw.example.test", "alice@example.test"
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     "example.test",
		Components: []testserver.Component{{Domain: gw, Secret: "s3cret-component"}},
		Users:      []testserver.User{{Name: "alice", Password: "alice-pw"}},
	})
	path := writeConfig(t, p.ComponentAddr, "")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`kind = "testnet"`), []byte(`kind = "testnet-hangup"`), 1), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs testserver.SyncBuffer
	go func() { done <- run(ctx, []string{"-config", path}, &bytes.Buffer{}, &logs) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("run did not stop")
		}
	}()

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	c := xmpptest.Dial(t, cctx, p.C2SAddr, jid.MustParse(user), "alice-pw")
	c.SendRaw(t, `<presence/>`)
	form := `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field>` +
		`<field var='username'><value>legacy</value></field><field var='password'><value>pw</value></field></x>`
	var res *xmpptest.Stanza
	for i := 0; i < 100; i++ { // until the gateway is connected
		res = c.IQ(t, 10*time.Second, `<iq type='set' to='`+gw+`' id='reg`+string(rune('a'+i%26))+`'><query xmlns='jabber:iq:register'>`+form+`</query></iq>`)
		if res.Type == "result" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res.Type != "result" {
		t.Fatalf("registration: %s\n%s", res, logs.String())
	}
	c.Expect(t, 10*time.Second, xmpptest.PresenceFrom(gw, "subscribe"))
	c.SendRaw(t, `<presence to='`+gw+`' type='subscribed'/>`)
	c.SendRaw(t, `<presence to='`+gw+`' type='subscribe'/>`)
	c.Expect(t, 10*time.Second, xmpptest.PresenceFrom(gw, ""))
	n := hangupNet.Load()
	waitFor(t, "the legacy session", func() bool { _, ok := n.Session(user); return ok })

	b, _ = os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`allow_domains = ["example.test"]`), []byte(`allow_domains = ["other.test"]`), 1), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)

	m := c.Expect(t, 10*time.Second, xmpptest.MessageFrom(gw))
	if body := m.Text("jabber:client", "body"); !strings.Contains(body, "example.test may no longer use") {
		t.Errorf("the user was told: %s", m)
	}
	c.Expect(t, 10*time.Second, xmpptest.PresenceFrom(gw, "unavailable"))
	waitFor(t, "the legacy session to end", func() bool { _, ok := n.Session(user); return !ok })

	// A new presence is refused, and logs nobody in.
	c.SendRaw(t, `<presence><show>away</show></presence>`)
	time.Sleep(500 * time.Millisecond)
	if _, ok := n.Session(user); ok || n.Logins() != 1 {
		t.Errorf("logged in again after access was withdrawn (%d logins)", n.Logins())
	}
}
