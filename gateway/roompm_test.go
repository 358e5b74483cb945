package gateway_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"passerelle.dev/passerelle/internal/gwtest"
	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// newRoomEnv is newEnv with the test network's group chats, and message
// carbons on the server.
func newRoomEnv(t *testing.T) *env {
	t.Helper()
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     serverDomain,
		Components: []testserver.Component{{Domain: gwDomain, Secret: gwSecret}},
		Users:      []testserver.User{{Name: "alice", Password: "alice-pw"}},
		Carbons:    true,
	})
	e := &env{t: t, server: p, proxy: testserver.NewProxy(t, p.ComponentAddr), net: testnet.New()}
	e.net.AddAccount("alice-legacy", "legacy-pw")
	e.dbPath = filepath.Join(t.TempDir(), "passerelle.db")
	g := gwtest.Start(t, gwtest.Options{
		Domain:    gwDomain,
		Secret:    gwSecret,
		Server:    e.proxy.Addr,
		Transport: e.net.WithRooms(),
		DBPath:    e.dbPath,
		Allowed:   func(d string) bool { return d == serverDomain },
	})
	e.gw, e.store, e.stop = g.Gateway, g.Store, g.Stop
	return e
}

// joinRoom joins room as nick from c and waits for the self-presence.
func joinRoom(t *testing.T, c *xmpptest.Client, room, nick string) {
	t.Helper()
	c.SendRaw(t, `<presence to='`+room+`/`+nick+`'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	c.Expect(t, wait, xmpptest.PresenceFrom(room+"/"+nick, ""))
}

// chatFrom matches a chat message from j with that body.
func chatFrom(j, body string) func(*xmpptest.Stanza) bool {
	return xmpptest.And(xmpptest.MessageFrom(j), func(s *xmpptest.Stanza) bool {
		return s.Type == "chat" && s.Text("", "body") == body
	})
}

// barrier returns once the user's loop has handled everything it was given
// before, and the server has routed what the gateway wrote meanwhile: the
// answer to an iq that the loop handles comes after those on the stream.
func barrier(t *testing.T, c *xmpptest.Client) {
	t.Helper()
	res := c.IQ(t, wait, `<iq type='get' to='barrier%test.example@`+gwDomain+`' id='barrier'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if res.Type != "result" {
		t.Fatalf("barrier iq: %s", res)
	}
}

// registerUnseen registers c's user with the gateway (keeping rooms
// joined while offline) without approving the transport's presence
// subscription and without sending presence: the transport sees no
// resource of the user online.
func registerUnseen(t *testing.T, c *xmpptest.Client) {
	t.Helper()
	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='reg1'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy", "password": "legacy-pw", "echo": "false", transports.FieldKeepRooms: "true"})+`</query></iq>`)
	if res.Type != "result" {
		t.Fatalf("registration failed: %s", res)
	}
}

// deliverer returns a function that has the user's legacy session deliver
// a chat message and waits until the gateway has written what it made of
// it.
func (e *env) deliverer(user string) func(from, body string) {
	e.t.Helper()
	sess, ok := e.net.Session(user)
	if !ok {
		e.t.Fatalf("%s has no legacy session", user)
	}
	return func(from, body string) {
		e.t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := sess.DeliverNow(ctx, transports.Message{From: from, Type: transports.Chat, Body: body}); err != nil {
			e.t.Fatalf("delivering %q: %v", body, err)
		}
	}
}

// TestChatToRoomOnlyResources: alice registered but never approved the
// transport's presence subscription, so it sees none of her resources
// online. A chat message from the legacy network then goes to her resources
// in rooms on the sender's network, each once, and not to her resource in
// no room; a message from another network, or one that arrives once a
// resource is online for the transport, goes to the bare JID as before,
// and with no resource anywhere the server stores it offline.
func TestChatToRoomOnlyResources(t *testing.T) {
	e := newRoomEnv(t)
	room1 := "#chat%one.example@" + gwDomain
	room2 := "#more%one.example@" + gwDomain
	bob := "bob%one.example@" + gwDomain
	carol := "carol%two.example@" + gwDomain
	bare := "alice@" + serverDomain

	phone := e.client("alice")
	registerUnseen(t, phone)
	joinRoom(t, phone, room1, "alice")
	joinRoom(t, phone, room2, "alice")
	tablet := e.client("alice")
	joinRoom(t, tablet, room1, "alice")
	laptop := e.client("alice") // connected, in no room, no presence yet
	deliver := e.deliverer(bare)

	// Each resource in a room of one.example gets it once, at its own JID.
	deliver("bob@one.example", "one")
	for _, c := range []*xmpptest.Client{phone, tablet} {
		if m := c.Expect(t, wait, chatFrom(bob, "one")); !strings.EqualFold(m.To, c.JID().String()) {
			t.Errorf("message to %s addressed to %s", c.JID(), m.To)
		}
	}
	// Another network, where alice is in no room: the bare JID, which has
	// no available resource, so the server keeps it.
	deliver("carol@two.example", "two")
	for _, c := range []*xmpptest.Client{phone, tablet, laptop} {
		barrier(t, c)
		c.ExpectNone(t, 0, chatFrom(bob, "one")) // one copy, and none to the laptop
		c.ExpectNone(t, 0, chatFrom(carol, "two"))
	}

	// The tablet leaves its only room: it no longer gets them.
	tablet.SendRaw(t, `<presence to='`+room1+`/alice' type='unavailable'/>`)
	tablet.Expect(t, wait, xmpptest.PresenceFrom(room1+"/alice", "unavailable"))
	deliver("bob@one.example", "three")
	phone.Expect(t, wait, chatFrom(bob, "three"))
	barrier(t, tablet)
	tablet.ExpectNone(t, 0, chatFrom(bob, "three"))

	// The laptop comes online, also for the transport: it gets what was
	// stored, and from then on the bare JID is used again.
	laptop.SendRaw(t, `<presence/>`)
	laptop.SendRaw(t, `<presence to='`+gwDomain+`'/>`)
	if m := laptop.Expect(t, wait, chatFrom(carol, "two")); !m.Has("urn:xmpp:delay", "delay") {
		t.Errorf("the message from another network did not come from offline storage: %s", m)
	}
	barrier(t, laptop)
	deliver("bob@one.example", "four")
	if m := laptop.Expect(t, wait, chatFrom(bob, "four")); !strings.EqualFold(m.To, bare) {
		t.Errorf("message with a resource online for the transport addressed to %s, want %s", m.To, bare)
	}
	barrier(t, phone)
	phone.ExpectNone(t, 0, chatFrom(bob, "four"))

	// Nobody online nor in a room, the rooms kept joined: the server keeps
	// the message for alice's next session.
	laptop.SendRaw(t, `<presence to='`+gwDomain+`' type='unavailable'/>`)
	laptop.SendRaw(t, `<presence type='unavailable'/>`)
	barrier(t, laptop)
	for _, room := range []string{room1, room2} {
		phone.SendRaw(t, `<presence to='`+room+`/alice' type='unavailable'/>`)
		phone.Expect(t, wait, xmpptest.PresenceFrom(room+"/alice", "unavailable"))
	}
	deliver("bob@one.example", "five")
	later := e.client("alice")
	later.SendRaw(t, `<presence/>`)
	if m := later.Expect(t, wait, chatFrom(bob, "five")); !m.Has("urn:xmpp:delay", "delay") {
		t.Errorf("the message for an offline user did not come from offline storage: %s", m)
	}
	for _, body := range []string{"one", "three", "four"} {
		later.ExpectNone(t, 0, chatFrom(bob, body))
	}
}

// carbon matches a carbon copy (XEP-0280) of a received message with that
// body.
func carbon(body string) func(*xmpptest.Stanza) bool {
	return func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "message" && s.Has("urn:xmpp:carbons:2", "received") && strings.Contains(s.Inner, ">"+body+"<")
	}
}

// TestChatToRoomResourcesWithCarbons: alice's clients are online but she
// never approved the transport's subscription. With message carbons on, as
// production servers have them, a message the gateway gives to several
// room resources itself is not also copied by the server to the others,
// which would show it twice; one given to a single resource still reaches
// her other clients as a carbon. (ejabberd copies nothing for a resource
// without presence: it takes such a message as routed to the bare JID.)
func TestChatToRoomResourcesWithCarbons(t *testing.T) {
	e := newRoomEnv(t)
	room := "#chat%one.example@" + gwDomain
	bob := "bob%one.example@" + gwDomain
	phone, tablet, laptop := carbonClients(t, e, room)
	deliver := e.deliverer("alice@" + serverDomain)

	deliver("bob@one.example", "to both")
	for _, c := range []*xmpptest.Client{phone, tablet} {
		c.Expect(t, wait, chatFrom(bob, "to both"))
	}
	for _, c := range []*xmpptest.Client{phone, tablet, laptop} {
		barrier(t, c)
		c.ExpectNone(t, 0, carbon("to both"))
		c.ExpectNone(t, 0, chatFrom(bob, "to both"))
	}

	tablet.SendRaw(t, `<presence to='`+room+`/alice' type='unavailable'/>`)
	tablet.Expect(t, wait, xmpptest.PresenceFrom(room+"/alice", "unavailable"))
	deliver("bob@one.example", "to the phone")
	phone.Expect(t, wait, chatFrom(bob, "to the phone"))
	laptop.Expect(t, wait, carbon("to the phone"))
}

// TestOccupantChatWithCarbons: a private message from a room occupant
// reaches each of the user's resources in the room once, as room/nick; it
// carries the muc#user mark (XEP-0045 §7.5) by which servers know not to
// carbon-copy it to resources that are not in the room, or to each other.
func TestOccupantChatWithCarbons(t *testing.T) {
	e := newRoomEnv(t)
	room := "#chat%one.example@" + gwDomain
	phone, tablet, laptop := carbonClients(t, e, room)
	sess, ok := e.net.Session("alice@" + serverDomain)
	if !ok {
		t.Fatal("no legacy session")
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := sess.DeliverNow(ctx, transports.Message{From: "#chat@one.example", Nick: "bob", Type: transports.Chat, Body: "psst"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*xmpptest.Client{phone, tablet} {
		c.Expect(t, wait, chatFrom(room+"/bob", "psst"))
	}
	for _, c := range []*xmpptest.Client{phone, tablet, laptop} {
		barrier(t, c)
		c.ExpectNone(t, 0, carbon("psst"))
		c.ExpectNone(t, 0, chatFrom(room+"/bob", "psst"))
	}
}

// carbonClients logs alice in three times with message carbons enabled:
// the phone (which registers, never approving the transport's
// subscription) and the tablet join room, the laptop is in no room.
func carbonClients(t *testing.T, e *env, room string) (phone, tablet, laptop *xmpptest.Client) {
	t.Helper()
	enable := func(c *xmpptest.Client) {
		t.Helper()
		if res := c.IQ(t, wait, `<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>`); res.Type != "result" {
			t.Fatalf("enabling carbons: %s", res)
		}
		c.SendRaw(t, `<presence/>`)
	}
	phone = e.client("alice")
	registerUnseen(t, phone)
	enable(phone)
	joinRoom(t, phone, room, "alice")
	tablet = e.client("alice")
	enable(tablet)
	joinRoom(t, tablet, room, "alice")
	laptop = e.client("alice")
	enable(laptop)
	return phone, tablet, laptop
}
