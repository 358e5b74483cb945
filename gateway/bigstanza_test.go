package gateway_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/internal/gwtest"
	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// TestOversizedLegacyEventsKeepTheStream delivers legacy events far over
// every server's stanza limit: the user gets the start of each with a note,
// the component connection stays up (Prosody closes it on a stanza over
// 512 KiB), and ordinary traffic goes on.
func TestOversizedLegacyEventsKeepTheStream(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, envOptions{metrics: gateway.NewMetrics(reg)})
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
	// Five messages and the presence were cut: an admin sees it.
	if got := metricValue(t, reg, `passerelle_limited_total{limit="stanza_cut",transport="`+gwDomain+`"}`); got != 6 {
		t.Errorf("stanzas counted as cut: %v, want 6", got)
	}
}

// isCut reports whether s starts with prefix and ends with the cut note.
func isCut(s, prefix string) bool {
	return strings.HasPrefix(s, prefix) && strings.Contains(s, "\n[cut: ") && strings.HasSuffix(s, "B more]")
}

// TestStanzaTheServerRejectsIsNotResent has the connection to the server
// end whenever one stanza passes, as a server that closes the stream on it
// does: a confirmed stanza is written at most twice, a plain one once; the
// user is told, Deliver returns and later messages flow.
func TestStanzaTheServerRejectsIsNotResent(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, envOptions{metrics: gateway.NewMetrics(reg)})
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
	if got := metricValue(t, reg, `passerelle_limited_total{limit="stanza_dropped",transport="`+gwDomain+`"}`); got != 1 {
		t.Errorf("stanzas counted as dropped: %v, want 1", got)
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

// roomNet is the test network with group chats: every address on
// rooms.test.example is a room that anyone joins at once.
type roomNet struct{ *testnet.Network }

func (roomNet) IsRoom(addr string) bool { return strings.HasSuffix(addr, "@rooms.test.example") }

func (n roomNet) Login(ctx context.Context, req transports.LoginRequest) (transports.Session, error) {
	s, err := n.Network.Login(ctx, req)
	if err != nil {
		return nil, err
	}
	return roomSession{s.(*testnet.Session)}, nil
}

type roomSession struct{ *testnet.Session }

func (s roomSession) JoinRoom(_ context.Context, room, nick, _ string) error {
	s.Inject(transports.RoomJoined{Room: room, Nick: nick, Subject: "small", SubjectBy: "carol",
		Occupants: []transports.Occupant{{Nick: nick}, {Nick: "carol"}}})
	return nil
}

func (s roomSession) LeaveRoom(_ context.Context, room, _ string) error {
	s.Inject(transports.RoomLeft{Room: room})
	return nil
}

func (roomSession) SetNick(context.Context, string, string, string) error {
	return transports.Errorf(transports.Unsupported, "no nick changes")
}

func (roomSession) Moderate(context.Context, string, string, transports.Moderation) error {
	return transports.Errorf(transports.Unsupported, "no moderation")
}

// TestOversizedRoomEventsKeepTheStream does for room subjects, occupant
// statuses, kick reasons and group-chat messages what
// TestOversizedLegacyEventsKeepTheStream does for chats.
func TestOversizedRoomEventsKeepTheStream(t *testing.T) {
	e := newBoundEnv(t, roomNet{}, 0, nil)
	c := e.aliceOnline()
	sess, _ := e.net.Session(alice)
	conns := e.proxy.Accepted()

	const room, roomJID = "room@rooms.test.example", "room%rooms.test.example@" + gwDomain
	carol := roomJID + "/carol"
	c.SendRaw(t, `<presence to='`+roomJID+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	c.Expect(t, wait, xmpptest.And(xmpptest.MessageFrom(carol), func(s *xmpptest.Stanza) bool { return s.Text("", "subject") == "small" }))
	with := func(text string) func(*xmpptest.Stanza) bool {
		return func(s *xmpptest.Stanza) bool { return strings.Contains(s.Inner, text) }
	}
	check := func(what string, s *xmpptest.Stanza, texts ...string) {
		t.Helper()
		if len(s.Inner) > gateway.DefaultMaxStanzaBytes {
			t.Errorf("%s: %d bytes", what, len(s.Inner))
		}
		for _, text := range texts {
			if !isCut(text, "big") {
				t.Errorf("%s not cut with a note: %.200s…", what, text)
			}
		}
	}

	sess.Inject(transports.RoomSubject{Room: room, Nick: "carol", Subject: "big1 " + strings.Repeat("s", 1<<20)})
	m := c.Expect(t, wait, xmpptest.And(xmpptest.MessageFrom(carol), with("big1")))
	check("room subject", m, m.Text("", "subject"))

	sess.Inject(transports.OccupantChanged{Room: room, Occupant: transports.Occupant{Nick: "carol", Status: "big2 " + strings.Repeat("o", 1<<20)}})
	m = c.Expect(t, wait, xmpptest.And(xmpptest.PresenceFrom(carol, ""), with("big2")))
	check("occupant status", m, m.Text("", "status"))

	sess.Inject(transports.Message{From: room, Nick: "carol", Type: transports.Groupchat, Body: "big3 " + strings.Repeat("<", 1<<20)})
	m = c.Expect(t, wait, xmpptest.And(xmpptest.MessageFrom(carol), with("big3")))
	check("group-chat message", m, m.Text("", "body"))

	sess.Inject(transports.OccupantChanged{Room: room, Occupant: transports.Occupant{Nick: "carol"}, Left: true, Kicked: true, By: "op", Reason: "big4 " + strings.Repeat("r", 1<<20)})
	m = c.Expect(t, wait, xmpptest.And(xmpptest.PresenceFrom(carol, "unavailable"), with("big4")))
	reason := m.Inner[strings.Index(m.Inner, "<reason>")+len("<reason>") : strings.Index(m.Inner, "</reason>")]
	check("kick", m, m.Text("", "status"), strings.ReplaceAll(reason, "&#xA;", "\n"))

	sess.Inject(transports.Message{From: room, Nick: "dave", Type: transports.Groupchat, Body: "still here"})
	c.Expect(t, wait, xmpptest.And(xmpptest.MessageFrom(roomJID+"/dave"), with("still here")))
	if n := e.proxy.Accepted(); n != conns {
		t.Errorf("the component reconnected %d times", n-conns)
	}
}

// newBoundEnv is newEnv with a network wrapper (its Network is set here),
// a stanza bound (0: the default) and a log.
func newBoundEnv(t *testing.T, tr interface {
	transports.Transport
	setNet(*testnet.Network) transports.Transport
}, maxStanza int, log *testserver.SyncBuffer) *env {
	t.Helper()
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     serverDomain,
		Components: []testserver.Component{{Domain: gwDomain, Secret: gwSecret}},
		Users:      []testserver.User{{Name: "alice", Password: "alice-pw"}},
	})
	e := &env{t: t, server: p, proxy: testserver.NewProxy(t, p.ComponentAddr), net: testnet.New()}
	e.net.AddAccount("alice-legacy", "legacy-pw", "friend@test.example")
	o := gwtest.Options{
		Domain: gwDomain, Secret: gwSecret, Server: e.proxy.Addr, Transport: tr.setNet(e.net),
		DBPath: filepath.Join(t.TempDir(), "passerelle.db"), Allowed: func(d string) bool { return d == serverDomain },
		MaxStanzaBytes: maxStanza,
	}
	if log != nil {
		o.Logger = gwtest.Logger(log)
	}
	g := gwtest.Start(t, o)
	e.gw, e.store, e.stop = g.Gateway, g.Store, g.Stop
	return e
}

func (roomNet) setNet(n *testnet.Network) transports.Transport { return roomNet{n} }

// plainNet is the test network as it is.
type plainNet struct{ *testnet.Network }

func (plainNet) setNet(n *testnet.Network) transports.Transport { return n }

// TestServerLimitWithARaisedBound raises the gateway's bound over
// Prosody's default component limit (512 KiB), for this test only, and
// sends a 600 KB message that must be confirmed: Prosody closes the stream
// on it with a stream error, which is logged; the gateway writes it twice
// at most, tells the user and goes on. ejabberd has no limit on a
// component's stanzas by default, and delivers it.
func TestServerLimitWithARaisedBound(t *testing.T) {
	var log testserver.SyncBuffer
	e := newBoundEnv(t, plainNet{}, 1<<20, &log)
	c := e.aliceOnline()
	sess, _ := e.net.Session(alice)
	conns := e.proxy.Accepted()

	sess.Inject(transports.Message{From: "friend@test.example", ID: "huge-1", Type: transports.Normal, Body: "huge " + strings.Repeat("h", 600<<10)})
	switch e.server.Kind {
	case "prosody":
		n := c.Expect(t, 3*wait, xmpptest.MessageFrom(gwDomain))
		if b := n.Text("", "body"); !strings.Contains(b, "could not be delivered") {
			t.Errorf("notice: %.300s", n.Inner)
		}
		if got := e.proxy.Accepted() - conns; got != 2 {
			t.Errorf("the gateway reconnected %d times, want 2", got)
		}
		if !strings.Contains(log.String(), "the XMPP server ended the stream with an error") {
			t.Errorf("the stream error was not logged:\n%s", gwtest.Tail(log.String(), 3000))
		}
	default:
		m := c.Expect(t, 3*wait, xmpptest.MessageFrom(friend))
		if len(m.Text("", "body")) != len("huge ")+600<<10 {
			t.Errorf("message of %d bytes", len(m.Inner))
		}
	}
	sess.Inject(transports.Message{From: "friend@test.example", ID: "small-1", Type: transports.Normal, Body: "after"})
	c.Expect(t, wait, xmpptest.And(xmpptest.MessageFrom(friend), func(s *xmpptest.Stanza) bool { return s.Text("", "body") == "after" }))
}
