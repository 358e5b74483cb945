package irc_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestPrivateMessages covers chats both ways, an invalid nick, a message to
// a missing nick, and a contact's presence followed with ISON.
func TestPrivateMessages(t *testing.T) {
	e := newEnv(t)
	bob := e.ircUser("bob")
	alice := e.client("alice", "phone")
	e.register(alice, "alice")

	alice.SendRaw(t, `<message to='`+userJID("bob")+`' type='chat' id='c1'><body>hello bob&#10;second line</body></message>`)
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PRIVMSG", "bob", "hello bob")))
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PRIVMSG", "bob", "second line")))
	bob.Send("PRIVMSG alice :hi alice")
	m := alice.Expect(t, wait, xmpptest.MessageFrom(userJID("bob")))
	if m.Type != "chat" || bodyOf(m) != "hi alice" {
		t.Errorf("private message from IRC: %s", m)
	}

	// A nick with a space cannot be an IRC target.
	alice.SendRaw(t, `<message to='bad\20nick%`+network+`@`+gwDomain+`' type='chat' id='c2'><body>x</body></message>`)
	if s := alice.Expect(t, wait, xmpptest.And(xmpptest.MessageFrom(`bad\20nick%`+network+`@`+gwDomain), func(s *xmpptest.Stanza) bool { return s.Type == "error" })); s.ErrorCondition() != "jid-malformed" {
		t.Errorf("nick with a space: %s", s)
	}
	// A nick nobody has: the IRC error comes back on that message.
	alice.SendRaw(t, `<message to='`+userJID("nobody")+`' type='chat' id='c3'><body>anyone?</body></message>`)
	s := alice.Expect(t, wait, xmpptest.And(xmpptest.MessageFrom(userJID("nobody")), func(s *xmpptest.Stanza) bool { return s.Type == "error" }))
	if s.ID != "c3" || s.ErrorCondition() != "item-not-found" {
		t.Errorf("message to a missing nick: %s", s)
	}

	// The user's away status reaches IRC.
	alice.SendRaw(t, `<presence><show>away</show><status>at lunch</status></presence>`)
	deadline := time.Now().Add(wait)
	for {
		bob.Send("WHOIS alice")
		m := bob.Expect(t, wait, func(m irctest.Message) bool { return m.Command == "301" || m.Command == "318" })
		if m.Command == "301" {
			if m.Trailing() != "at lunch" {
				t.Errorf("away message = %q", m.Trailing())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice never shows as away on IRC")
		}
		time.Sleep(50 * time.Millisecond)
	}
	alice.SendRaw(t, `<presence/>`)

	// Presence: bob in the roster is shown online, then offline when he
	// quits.
	alice.SendRaw(t, `<presence to='`+userJID("bob")+`' type='subscribe'/>`)
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), "subscribed"))
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), ""))
	bob.Send("QUIT :later")
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), "unavailable"))
	e.ircUser("bob")
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), ""))
}

// TestSharedMembership gives two resources of one user one IRC membership,
// and leaves IRC only when the last one leaves; going offline quits.
func TestSharedMembership(t *testing.T) {
	e := newEnv(t)
	bob := e.ircUser("bob")
	bob.Join(t, "#shared")
	phone := e.client("alice", "phone")
	e.register(phone, "alice")
	laptop := e.client("alice", "laptop")
	laptop.SendRaw(t, `<presence/>`)

	join(t, phone, "#shared", "alice")
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("JOIN", "#shared")))
	join(t, laptop, "#shared", "alice")
	laptop.Expect(t, wait, occupant("#shared", "bob", ""))
	bob.ExpectNone(t, 300*time.Millisecond, irctest.From("alice", irctest.Command("JOIN")))

	bob.Send("PRIVMSG #shared :to both")
	phone.Expect(t, wait, groupchat("#shared", "bob", "to both"))
	laptop.Expect(t, wait, groupchat("#shared", "bob", "to both"))
	phone.SendRaw(t, `<message to='`+roomJID("#shared")+`' type='groupchat' id='p1'><body>from the phone</body></message>`)
	bob.Expect(t, wait, irctest.Command("PRIVMSG", "#shared", "from the phone"))
	if r := laptop.Expect(t, wait, groupchat("#shared", "alice", "from the phone")); r.ID != "p1" {
		t.Errorf("reflection to the other resource: %s", r)
	}

	phone.SendRaw(t, `<presence to='`+roomJID("#shared")+`/alice' type='unavailable'/>`)
	if s := phone.Expect(t, wait, occupant("#shared", "alice", "unavailable")); !hasStatus(s, 110) {
		t.Errorf("leaving resource: %s", s)
	}
	bob.ExpectNone(t, 300*time.Millisecond, irctest.From("alice", irctest.Command("PART")))
	laptop.SendRaw(t, `<presence to='`+roomJID("#shared")+`/alice' type='unavailable'><status>off to lunch</status></presence>`)
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PART", "#shared", "off to lunch")))

	// Offline everywhere: the IRC connection quits.
	laptop.SendRaw(t, `<presence type='unavailable'/>`)
	phone.SendRaw(t, `<presence type='unavailable'/>`)
	deadline := time.Now().Add(wait)
	for {
		bob.Send("ISON alice")
		if m := bob.Expect(t, wait, irctest.Command("303")); strings.TrimSpace(m.Trailing()) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice is still connected to IRC after going offline")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIRCServerKilled: the server dies; the user is told (in the room and
// by the network's presence), the gateway reconnects with backoff, rejoins
// the room, tells the user it is connected again, and the room works both
// ways.
func TestIRCServerKilled(t *testing.T) {
	e := newEnv(t)
	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	join(t, alice, "#live", "alice")
	netJID := network + "@" + gwDomain
	alice.Expect(t, wait, xmpptest.PresenceFrom(netJID, ""))

	e.irc.Kill()
	note := alice.Expect(t, wait, groupchat("#live", "", ""))
	if !strings.Contains(bodyOf(note), "reconnecting") {
		t.Errorf("room note on disconnection: %s", note)
	}
	if p := alice.Expect(t, wait, xmpptest.PresenceFrom(netJID, "unavailable")); !strings.Contains(p.Text("", "status"), "reconnecting") {
		t.Errorf("network presence on disconnection: %s", p)
	}
	e.irc.Restart(t)
	self := alice.Expect(t, 3*wait, selfPresence("#live"))
	if !strings.HasSuffix(self.From, "/alice") {
		t.Errorf("rejoined as %s", self.From)
	}
	alice.Expect(t, wait, xmpptest.PresenceFrom(netJID, ""))
	bob := e.ircUser("bob")
	bob.Join(t, "#live")
	alice.Expect(t, wait, occupant("#live", "bob", ""))
	bob.Send("PRIVMSG #live :welcome back")
	alice.Expect(t, wait, groupchat("#live", "bob", "welcome back"))
	alice.SendRaw(t, `<message to='`+roomJID("#live")+`' type='groupchat' id='back'><body>glad to be back</body></message>`)
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PRIVMSG", "#live", "glad to be back")))
}

// TestGatewayRestartRejoins: rooms survive a gateway restart for the
// resources still online.
func TestGatewayRestartRejoins(t *testing.T) {
	e := newEnv(t)
	bob, alice := e.bobAndAlice(t, "#keep")

	e.stop()
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("QUIT")))
	e.start()
	bob.Expect(t, 2*wait, irctest.From("alice", irctest.Command("JOIN", "#keep")))
	alice.Expect(t, wait, selfPresence("#keep"))
	bob.Send("PRIVMSG #keep :still here?")
	alice.Expect(t, wait, groupchat("#keep", "bob", "still here?"))
}

// TestTLS connects over TLS with the server's CA, and refuses a server
// whose certificate it cannot verify.
func TestTLS(t *testing.T) {
	t.Run("verified", func(t *testing.T) {
		e := newEnv(t, envOptions{tls: true, trustCA: true})
		alice := e.client("alice", "phone")
		e.register(alice, "alice")
		join(t, alice, "#secure", "alice")
	})
	t.Run("unverified", func(t *testing.T) {
		e := newEnv(t, envOptions{tls: true})
		alice := e.client("alice", "phone")
		e.register(alice, "alice")
		alice.SendRaw(t, `<presence to='`+roomJID("#secure")+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		s := alice.Expect(t, wait, xmpptest.PresenceFrom(roomJID("#secure")+"/alice", "error"))
		if !strings.Contains(s.Inner, "certificate cannot be verified") {
			t.Errorf("the user is not told why the join failed: %s", s)
		}
		alice.ExpectNone(t, 500*time.Millisecond, selfPresence("#secure"))
	})
}

// TestKeepRooms: with keep_rooms, going offline keeps the channels joined
// on IRC (and away); coming back shows the room at once; leaving a room
// while online still parts it.
func TestKeepRooms(t *testing.T) {
	e := newEnv(t)
	bob := e.ircUser("bob")
	bob.Join(t, "#stay")
	bob.Join(t, "#part")
	alice := e.client("alice", "phone")
	e.register(alice, "alice", "keep_rooms", "true")
	join(t, alice, "#stay", "alice")
	join(t, alice, "#part", "alice")
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("JOIN", "#part")))

	// Leaving one room while online parts it, after the grace period.
	alice.SendRaw(t, `<presence to='`+roomJID("#part")+`/alice' type='unavailable'/>`)
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PART", "#part")))

	alice.Close() // offline: the server sends unavailable presences
	bob.ExpectNone(t, 3*time.Second, irctest.From("alice", func(m irctest.Message) bool { return m.Command == "PART" || m.Command == "QUIT" }))
	bob.Send("NAMES #stay")
	if m := bob.Expect(t, wait, irctest.Command("353")); !strings.Contains(m.Trailing(), "alice") {
		t.Errorf("alice left #stay: %s", m.Raw)
	}
	bob.Send("PRIVMSG #stay :while you were away")

	back := e.client("alice", "laptop")
	back.SendRaw(t, `<presence/>`)
	join(t, back, "#stay", "alice")
	back.Expect(t, wait, occupant("#stay", "bob", ""))
	bob.ExpectNone(t, 500*time.Millisecond, irctest.From("alice", irctest.Command("JOIN")))
	bob.Send("PRIVMSG #stay :welcome back")
	back.Expect(t, wait, groupchat("#stay", "bob", "welcome back"))
}

// TestSettingsChangeRejoins: new settings reconnect to IRC with them and
// rejoin the user's rooms.
func TestSettingsChangeRejoins(t *testing.T) {
	e := newEnv(t)
	bob, alice := e.bobAndAlice(t, "#set")

	res := alice.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='s1'><command xmlns='http://jabber.org/protocol/commands' node='settings' action='execute'/></iq>`)
	m := regexp.MustCompile(`sessionid="([^"]+)"`).FindStringSubmatch(res.Inner)
	if m == nil {
		t.Fatalf("settings: %s", res)
	}
	res = alice.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='s2'><command xmlns='http://jabber.org/protocol/commands' node='settings' sessionid='`+m[1]+`' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='nick'><value>alicia</value></field><field var='realname'><value>Alicia</value></field></x></command></iq>`)
	if !strings.Contains(res.Inner, `status="completed"`) {
		t.Fatalf("settings change: %s", res)
	}
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("QUIT")))
	bob.Expect(t, wait, irctest.From("alicia", irctest.Command("JOIN", "#set")))
	self := alice.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return selfPresence("#set")(s) && strings.HasSuffix(s.From, "/alicia")
	})
	if !hasStatus(self, 210) {
		t.Errorf("the new nick is not flagged: %s", self)
	}
	bob.Send("PRIVMSG #set :hello alicia")
	alice.Expect(t, wait, groupchat("#set", "bob", "hello alicia"))
}

// TestMonitorAndTwoNetworks: one user on two networks at once (ngircd and
// InspIRCd), rooms on both, and a contact's presence followed with MONITOR
// (ISON polling is made too slow to notice anything).
func TestMonitorAndTwoNetworks(t *testing.T) {
	e := newEnv(t, envOptions{second: true, slowPoll: true})
	bob1 := e.ircUser("bob")
	bob1.Join(t, "#one")
	carol := irctest.Dial(t, e.irc2.Addr(), "carol")
	carol.Join(t, "#two")
	alice := e.client("alice", "phone")
	e.register(alice, "alice")

	room2 := "#two%" + network2 + "@" + gwDomain
	join(t, alice, "#one", "alice")
	alice.SendRaw(t, `<presence to='`+room2+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	alice.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "presence" && strings.HasPrefix(s.From, room2+"/") && hasStatus(s, 110)
	})
	carol.Expect(t, wait, irctest.From("alice", irctest.Command("JOIN", "#two")))
	carol.Send("PRIVMSG #two :from the second network")
	m := alice.Expect(t, wait, xmpptest.MessageFrom(room2+"/carol"))
	if bodyOf(m) != "from the second network" {
		t.Errorf("message on the second network: %s", m)
	}
	bob1.Send("PRIVMSG #one :from the first")
	alice.Expect(t, wait, groupchat("#one", "bob", "from the first"))

	dave := "dave%" + network2 + "@" + gwDomain
	alice.SendRaw(t, `<presence to='`+dave+`' type='subscribe'/>`)
	alice.Expect(t, wait, xmpptest.PresenceFrom(dave, "subscribed"))
	alice.ExpectNone(t, 500*time.Millisecond, xmpptest.PresenceFrom(dave, ""))
	d := irctest.Dial(t, e.irc2.Addr(), "dave")
	alice.Expect(t, wait, xmpptest.PresenceFrom(dave, ""))
	d.Send("QUIT :bye")
	alice.Expect(t, wait, xmpptest.PresenceFrom(dave, "unavailable"))
}
