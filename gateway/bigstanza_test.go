package gateway_test

import (
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// TestOversizedLegacyEventsKeepTheStream delivers legacy events far over
// every server's stanza limit: the user gets the start of each with a note,
// the component connection stays up (Prosody closes it on a stanza over
// 512 KiB), and ordinary traffic goes on.
func TestOversizedLegacyEventsKeepTheStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()
	sess, _ := e.net.Session(alice)
	conns := e.proxy.Accepted()

	const from = "friend@test.example"
	body := func(m *xmpptest.Stanza) string { return m.Text("jabber:client", "body") }
	subject := func(m *xmpptest.Stanza) string { return m.Text("jabber:client", "subject") }
	for _, tc := range []struct {
		name  string
		ev    transports.Message
		check func(m *xmpptest.Stanza) bool
	}{
		{"2 MB body", transports.Message{From: from, Type: transports.Chat, Body: "big1 " + strings.Repeat("x", 2<<20)},
			func(m *xmpptest.Stanza) bool { return isCut(body(m), "big1 xxx") }},
		{"2 MB body, confirmed", transports.Message{From: from, ID: "mail-1", Type: transports.Normal, Body: "big2 " + strings.Repeat("é", 1<<20)},
			func(m *xmpptest.Stanza) bool { return isCut(body(m), "big2 ééé") }},
		{"100 KB subject", transports.Message{From: from, Type: transports.Normal, Subject: "big3 " + strings.Repeat("s", 100<<10), Body: "b3"},
			func(m *xmpptest.Stanza) bool { return isCut(subject(m), "big3 sss") && body(m) == "b3" }},
		{"1 MB thread", transports.Message{From: from, Type: transports.Chat, Thread: strings.Repeat("t", 1<<20), Body: "big4"},
			func(m *xmpptest.Stanza) bool {
				return body(m) == "big4" && len(m.Text("jabber:client", "thread")) < 2<<10
			}},
		{"500 KB of <", transports.Message{From: from, Type: transports.Chat, Body: "big5 " + strings.Repeat("<", 500<<10)},
			func(m *xmpptest.Stanza) bool { return isCut(body(m), "big5 <<<") }},
	} {
		sess.Inject(tc.ev)
		m := c.Expect(t, wait, xmpptest.MessageFrom(friend))
		if len(m.Inner) > gateway.DefaultMaxStanzaBytes || !tc.check(m) {
			t.Errorf("%s: got %d bytes: %.300s…", tc.name, len(m.Inner), m.Inner)
		}
	}

	sess.Inject(transports.Presence{From: from, Available: true, Show: transports.ShowAway, Status: "big6 " + strings.Repeat("p", 1<<20)})
	p := c.Expect(t, wait, xmpptest.And(xmpptest.PresenceFrom(friend, ""), func(s *xmpptest.Stanza) bool { return strings.Contains(s.Inner, "big6") }))
	if !isCut(p.Text("jabber:client", "status"), "big6 ppp") {
		t.Errorf("presence status: %d bytes: %.300s…", len(p.Inner), p.Inner)
	}

	sess.Inject(transports.Message{From: from, Type: transports.Chat, Body: "still here"})
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); body(m) != "still here" {
		t.Errorf("ordinary message after the big ones: %.300s", m.Inner)
	}
	if n := e.proxy.Accepted(); n != conns {
		t.Errorf("the component reconnected %d times", n-conns)
	}
}

// isCut reports whether s starts with prefix and ends with the cut note.
func isCut(s, prefix string) bool {
	return strings.HasPrefix(s, prefix) && strings.Contains(s, "\n[cut: ") && strings.HasSuffix(s, " KB more]")
}

// TestStanzaTheServerRejectsIsNotResent has the connection to the server
// end whenever one stanza passes, as a server that closes the stream on it
// does: a confirmed stanza is written at most twice, a plain one once; the
// user is told, Deliver returns and later messages flow.
func TestStanzaTheServerRejectsIsNotResent(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()
	sess, _ := e.net.Session(alice)
	const marker = "POISON-7f3a"
	e.proxy.CutOn([]byte(marker))

	// A stable id: the gateway waits for the server's confirmation.
	sess.Inject(transports.Message{From: "friend@test.example", ID: "mail-poison", Type: transports.Normal, Body: marker + " one"})
	n := c.Expect(t, 3*wait, xmpptest.MessageFrom(gwDomain))
	if b := n.Text("jabber:client", "body"); !strings.Contains(b, "could not be delivered") || !strings.Contains(b, "friend%test.example@"+gwDomain) {
		t.Errorf("notice: %s", n)
	}
	if got := e.proxy.CutOns(); got != 2 {
		t.Errorf("the confirmed stanza was written on %d connections, want 2", got)
	}
	sess.Inject(transports.Message{From: "friend@test.example", ID: "mail-2", Type: transports.Normal, Body: "after one"})
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "after one" {
		t.Errorf("next message: %s", m)
	}

	// No id: written once; a lost stanza is not sent again. (What follows
	// it on the dying connection is lost too, so wait for the next one.)
	conns := e.proxy.Accepted()
	sess.Inject(transports.Message{From: "friend@test.example", Type: transports.Chat, Body: marker + " two"})
	eventually(t, "the gateway reconnected", func() bool { return e.proxy.Accepted() > conns && e.gw.Connected() })
	sess.Inject(transports.Message{From: "friend@test.example", Type: transports.Chat, Body: "after two"})
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "after two" {
		t.Errorf("next message: %s", m)
	}
	time.Sleep(500 * time.Millisecond)
	if got := e.proxy.CutOns(); got != 3 {
		t.Errorf("the stanzas were written on %d connections in all, want 3", got)
	}
}
