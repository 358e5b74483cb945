package irc_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestRoomJoinAndMessages covers a join (occupants with roles, self
// presence, subject), messages both ways with reflection, /me, multi-line
// and long messages, and an injection attempt.
func TestRoomJoinAndMessages(t *testing.T) {
	e := newEnv(t)
	bob := e.ircUser("bob")
	bob.Join(t, "#test") // first in: channel operator
	bob.Send("TOPIC #test :Go things")
	bob.Expect(t, wait, irctest.Command("TOPIC", "#test"))

	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	alice.SendRaw(t, `<presence to='`+roomJID("#test")+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	op := alice.Expect(t, wait, occupant("#test", "bob", ""))
	if !hasAttr(op, "role", "moderator") || !hasAttr(op, "affiliation", "admin") {
		t.Errorf("bob (channel operator) should be a moderator and admin: %s", op)
	}
	if !hasAttr(op, "jid", userJID("bob")) {
		t.Errorf("bob's presence should give his private-chat JID: %s", op)
	}
	self := alice.Expect(t, wait, selfPresence("#test"))
	if !strings.HasSuffix(self.From, "/alice") || !hasAttr(self, "role", "participant") {
		t.Errorf("self presence: %s", self)
	}
	subj := alice.Expect(t, wait, func(s *xmpptest.Stanza) bool { return s.XMLName.Local == "message" && s.Has("", "subject") })
	if got := subj.Text("", "subject"); got != "Go things" {
		t.Errorf("subject = %q, want %q", got, "Go things")
	}
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("JOIN", "#test")))

	bob.Send("PRIVMSG #test :hello from irc")
	alice.Expect(t, wait, groupchat("#test", "bob", "hello from irc"))

	alice.SendRaw(t, `<message to='`+roomJID("#test")+`' type='groupchat' id='m1'><body>hi there</body></message>`)
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PRIVMSG", "#test", "hi there")))
	refl := alice.Expect(t, wait, groupchat("#test", "alice", "hi there"))
	if refl.ID != "m1" {
		t.Errorf("reflected message id = %q, want m1", refl.ID)
	}

	alice.SendRaw(t, `<message to='`+roomJID("#test")+`' type='groupchat' id='m2'><body>/me waves</body></message>`)
	bob.Expect(t, wait, irctest.Command("PRIVMSG", "#test", "\x01ACTION waves\x01"))
	bob.Send("PRIVMSG #test :\x01ACTION nods\x01")
	alice.Expect(t, wait, groupchat("#test", "bob", "/me nods"))
	bob.Send("NOTICE #test :a notice")
	alice.Expect(t, wait, groupchat("#test", "bob", "a notice"))

	// Two lines, and an attempt to smuggle a command: each line is a
	// PRIVMSG of its own, nothing else reaches the wire.
	alice.SendRaw(t, `<message to='`+roomJID("#test")+`' type='groupchat' id='m3'><body>first&#13;&#10;QUIT :pwned&#10;PART #test</body></message>`)
	bob.Expect(t, wait, irctest.Command("PRIVMSG", "#test", "first"))
	bob.Expect(t, wait, irctest.Command("PRIVMSG", "#test", "QUIT :pwned"))
	bob.Expect(t, wait, irctest.Command("PRIVMSG", "#test", "PART #test"))

	// A long message is cut under the line limit on UTF-8 boundaries and
	// loses nothing.
	long := strings.Repeat("é", 700)
	alice.SendRaw(t, `<message to='`+roomJID("#test")+`' type='groupchat' id='m4'><body>`+long+`</body></message>`)
	var got strings.Builder
	for got.Len() < len(long) {
		m := bob.Expect(t, wait, irctest.Command("PRIVMSG", "#test"))
		if len(m.Raw)+2 > 512 {
			t.Errorf("line of %d bytes exceeds the IRC limit", len(m.Raw)+2)
		}
		if !utf8.ValidString(m.Trailing()) {
			t.Fatalf("line cut inside a character: %q", m.Trailing())
		}
		got.WriteString(m.Trailing())
	}
	if got.String() != long {
		t.Errorf("long message changed on the way")
	}
	bob.ExpectNone(t, 300*time.Millisecond, irctest.Command("QUIT"))
	bob.ExpectNone(t, 0, irctest.From("alice", irctest.Command("PART")))
}

// TestOccupantChanges covers IRC-side JOIN, NICK, MODE, TOPIC, KICK, PART
// and QUIT as MUC presences and subjects.
func TestOccupantChanges(t *testing.T) {
	e := newEnv(t)
	bob, alice := e.bobAndAlice(t, "#room")

	dave := e.ircUser("dave")
	dave.Join(t, "#room")
	alice.Expect(t, wait, occupant("#room", "dave", ""))

	dave.Send("NICK david")
	gone := alice.Expect(t, wait, occupant("#room", "dave", "unavailable"))
	if !hasStatus(gone, 303) || !hasAttr(gone, "nick", "david") {
		t.Errorf("nick change: %s", gone)
	}
	alice.Expect(t, wait, occupant("#room", "david", ""))

	bob.Send("MODE #room +v david")
	v := alice.Expect(t, wait, occupant("#room", "david", ""))
	if !hasAttr(v, "role", "participant") || !hasAttr(v, "affiliation", "member") {
		t.Errorf("+v: %s", v)
	}
	bob.Send("MODE #room +o alice")
	me := alice.Expect(t, wait, selfPresence("#room"))
	if !hasAttr(me, "role", "moderator") {
		t.Errorf("+o on the user: %s", me)
	}
	bob.Send("MODE #room +m")
	bob.Expect(t, wait, irctest.Command("MODE", "#room", "+m"))

	bob.Send("TOPIC #room :new topic")
	s := alice.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "message" && s.Text("", "subject") == "new topic"
	})
	if !strings.HasSuffix(s.From, "/bob") {
		t.Errorf("topic: %s", s)
	}

	bob.Send("KICK #room david :behave")
	k := alice.Expect(t, wait, occupant("#room", "david", "unavailable"))
	if !hasStatus(k, 307) || !strings.Contains(k.Inner, "behave") || !hasAttr(k, "nick", "bob") {
		t.Errorf("kick: %s", k)
	}

	eve := e.ircUser("eve")
	eve.Join(t, "#room")
	// Unvoiced occupants of a moderated channel are visitors.
	if p := alice.Expect(t, wait, occupant("#room", "eve", "")); !hasAttr(p, "role", "visitor") {
		t.Errorf("unvoiced occupant of a +m channel: %s", p)
	}
	eve.Send("PART #room :bye all")
	p := alice.Expect(t, wait, occupant("#room", "eve", "unavailable"))
	if !strings.Contains(p.Inner, "bye all") {
		t.Errorf("part reason missing: %s", p)
	}
	frank := e.ircUser("frank")
	frank.Join(t, "#room")
	alice.Expect(t, wait, occupant("#room", "frank", ""))
	frank.Send("QUIT :gone fishing")
	q := alice.Expect(t, wait, occupant("#room", "frank", "unavailable"))
	if !strings.Contains(q.Inner, "gone fishing") {
		t.Errorf("quit reason missing: %s", q)
	}

	// The user is kicked: their own unavailable presence with 307.
	bob.Send("KICK #room alice :out")
	self := alice.Expect(t, wait, occupant("#room", "alice", "unavailable"))
	if !hasStatus(self, 110) || !hasStatus(self, 307) {
		t.Errorf("self kick: %s", self)
	}
}

// TestModerationFromXMPP covers subject changes and muc#admin kicks, bans
// and voice, with and without the rights on IRC.
func TestModerationFromXMPP(t *testing.T) {
	e := newEnv(t)
	bob := e.ircUser("bob")
	bob.Join(t, "#mod")
	dave := e.ircUser("dave")
	dave.Join(t, "#mod")
	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	join(t, alice, "#mod", "alice")

	// Not an operator: the IRC refusal comes back as an XMPP error.
	res := alice.IQ(t, wait, `<iq type='set' to='`+roomJID("#mod")+`' id='k1'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='dave' role='none'><reason>spam</reason></item></query></iq>`)
	if res.Type != "error" || res.ErrorCondition() != "forbidden" {
		t.Fatalf("kick without rights: %s", res)
	}

	bob.Send("MODE #mod +o alice")
	alice.Expect(t, wait, selfPresence("#mod"))

	res = alice.IQ(t, wait, `<iq type='set' to='`+roomJID("#mod")+`' id='v1'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='dave' role='participant'/></query></iq>`)
	if res.Type != "result" {
		t.Fatalf("voice: %s", res)
	}
	dave.Expect(t, wait, irctest.Command("MODE", "#mod", "+v", "dave"))

	alice.SendRaw(t, `<message to='`+roomJID("#mod")+`' type='groupchat' id='s1'><subject>set from XMPP</subject></message>`)
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("TOPIC", "#mod", "set from XMPP")))
	alice.Expect(t, wait, func(s *xmpptest.Stanza) bool { return s.Has("", "subject") && s.Text("", "subject") == "set from XMPP" })

	res = alice.IQ(t, wait, `<iq type='set' to='`+roomJID("#mod")+`' id='k2'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='dave' role='none'><reason>spam&#10;QUIT</reason></item></query></iq>`)
	if res.Type != "result" {
		t.Fatalf("kick: %s", res)
	}
	dave.Expect(t, wait, irctest.Command("KICK", "#mod", "dave", "spam QUIT"))
	alice.Expect(t, wait, occupant("#mod", "dave", "unavailable"))

	res = alice.IQ(t, wait, `<iq type='set' to='`+roomJID("#mod")+`' id='b1'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='bob' affiliation='outcast'/></query></iq>`)
	if res.Type != "result" {
		t.Fatalf("ban: %s", res)
	}
	bob.Expect(t, wait, irctest.Command("MODE", "#mod", "+b", "bob!*@*"))
	bob.Expect(t, wait, irctest.Command("KICK", "#mod", "bob"))

	res = alice.IQ(t, wait, `<iq type='get' to='`+roomJID("#mod")+`' id='l1'><query xmlns='http://jabber.org/protocol/muc#admin'><item role='moderator'/></query></iq>`)
	if res.Type != "result" || !hasAttr(res, "nick", "alice") {
		t.Errorf("moderator list: %s", res)
	}
}

// TestJoinErrors maps IRC join failures to MUC errors.
func TestJoinErrors(t *testing.T) {
	e := newEnv(t)
	bob := e.ircUser("bob")
	for _, ch := range []string{"#keyed", "#invite", "#banned", "#full"} {
		bob.Join(t, ch)
	}
	bob.Send("MODE #keyed +k sesame")
	bob.Send("MODE #invite +i")
	bob.Send("MODE #banned +b alice!*@*")
	bob.Send("MODE #full +l 1")
	bob.Expect(t, wait, irctest.Command("MODE", "#full"))

	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	for _, c := range []struct{ channel, cond string }{
		{"#keyed", "not-authorized"},
		{"#invite", "registration-required"},
		{"#banned", "forbidden"},
		{"#full", "service-unavailable"},
	} {
		alice.SendRaw(t, `<presence to='`+roomJID(c.channel)+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		s := alice.Expect(t, wait, xmpptest.PresenceFrom(roomJID(c.channel)+"/alice", "error"))
		if s.ErrorCondition() != c.cond {
			t.Errorf("%s: error %q, want %q: %s", c.channel, s.ErrorCondition(), c.cond, s)
		}
	}
	// With the key, the join works.
	join(t, alice, "#keyed", "alice", "sesame")

	// So is a nickname with a space.
	alice.SendRaw(t, `<presence to='`+roomJID("#other")+`/bad nick'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	if s := alice.Expect(t, wait, xmpptest.PresenceFrom(roomJID("#other")+"/bad nick", "error")); s.ErrorCondition() != "jid-malformed" {
		t.Errorf("nick with a space: %s", s)
	}

	// A room name that would break the IRC line is refused before IRC.
	alice.SendRaw(t, `<presence to='#a\20b%`+network+`@`+gwDomain+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	s := alice.Expect(t, wait, func(s *xmpptest.Stanza) bool { return s.XMLName.Local == "presence" && s.Type == "error" })
	if s.ErrorCondition() != "jid-malformed" {
		t.Errorf("bad room name: %s", s)
	}
}

// TestNickCollisionAtConnect gives the user a suffixed nick and says so.
func TestNickCollisionAtConnect(t *testing.T) {
	e := newEnv(t)
	squatter := e.ircUser("alice")
	squatter.Join(t, "#c")
	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	self := join(t, alice, "#c", "alice")
	if !strings.HasSuffix(self.From, "/alice_") || !hasStatus(self, 210) {
		t.Errorf("self presence after a nick collision: %s", self)
	}
	note := alice.Expect(t, wait, xmpptest.MessageFrom(network+"@"+gwDomain))
	if !strings.Contains(bodyOf(note), "alice_") {
		t.Errorf("the user is not told about the new nick: %s", note)
	}
	// A nick change to a taken nick is refused with conflict.
	alice.SendRaw(t, `<presence to='`+roomJID("#c")+`/alice'/>`)
	s := alice.Expect(t, wait, xmpptest.PresenceFrom(roomJID("#c")+"/alice", "error"))
	if s.ErrorCondition() != "conflict" {
		t.Errorf("nick change to a taken nick: %s", s)
	}
	alice.SendRaw(t, `<presence to='`+roomJID("#c")+`/alicia'/>`)
	ch := alice.Expect(t, wait, occupant("#c", "alice_", "unavailable"))
	if !hasStatus(ch, 303) || !hasStatus(ch, 110) {
		t.Errorf("own nick change: %s", ch)
	}
	squatter.Expect(t, wait, irctest.Command("NICK", "alicia"))
}

// TestDiscoAdvertisesRooms: the IRC domain shows as a conference service
// and a room as a MUC room.
func TestDiscoAdvertisesRooms(t *testing.T) {
	e := newEnv(t)
	alice := e.client("alice", "phone")
	res := alice.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if !hasAttr(res, "category", "conference") || !hasAttr(res, "var", "http://jabber.org/protocol/muc") || !hasAttr(res, "category", "gateway") {
		t.Errorf("domain disco: %s", res)
	}
	res = alice.IQ(t, wait, `<iq type='get' to='`+roomJID("#go")+`' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if !hasAttr(res, "category", "conference") || !hasAttr(res, "var", "http://jabber.org/protocol/muc") {
		t.Errorf("room disco: %s", res)
	}
}

// TestPrivateMessageInRoom: a private message to an occupant goes to the
// nick, and the answer comes back from room/nick, as MUC services do.
func TestPrivateMessageInRoom(t *testing.T) {
	e := newEnv(t)
	bob := e.ircUser("bob")
	bob.Join(t, "#pm")
	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	join(t, alice, "#pm", "alice")
	alice.SendRaw(t, `<message to='`+roomJID("#pm")+`/bob' type='chat' id='pm1'><body>psst</body></message>`)
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PRIVMSG", "bob", "psst")))
	bob.Send("PRIVMSG alice :what?")
	m := alice.Expect(t, wait, xmpptest.MessageFrom(roomJID("#pm")+"/bob"))
	if m.Type != "chat" || bodyOf(m) != "what?" {
		t.Errorf("answer: %s", m)
	}
}
