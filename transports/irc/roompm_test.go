package irc_test

import (
	"strings"
	"testing"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestPrivateMessageToRoomOnlyUser: alice registered but never approved the
// transport's presence subscription, and her phone, a room-only client,
// sends no presence but its join. A private message from IRC reaches the
// phone, which is in a room on that network, instead of her bare JID (where
// the server would store it offline). Her laptop is online but in no room
// and unseen by the transport: it gets no copy (a server with carbons would
// send it one).
func TestPrivateMessageToRoomOnlyUser(t *testing.T) {
	e := newEnv(t)
	bob := e.ircUser("bob")
	bob.Join(t, "#pm")

	phone := e.client("alice", "phone")
	res := phone.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='reg'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field><field var='nick'><value>alice</value></field></x></query></iq>`)
	if res.Type != "result" {
		t.Fatalf("registration failed: %s", res)
	}
	laptop := e.client("alice", "laptop")
	laptop.SendRaw(t, `<presence/>`)

	join(t, phone, "#pm", "alice")
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("JOIN", "#pm")))

	bob.Send("PRIVMSG alice :psst, in private")
	m := phone.Expect(t, wait, xmpptest.MessageFrom(userJID("bob")))
	if m.Type != "chat" || bodyOf(m) != "psst, in private" || !strings.EqualFold(m.To, phone.JID().String()) {
		t.Errorf("private message to the room-only resource: %s", m)
	}
	// Everything the gateway wrote before answering this iq has been routed.
	if r := laptop.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='barrier'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`); r.Type != "result" {
		t.Fatalf("disco#info: %s", r)
	}
	laptop.ExpectNone(t, 0, xmpptest.MessageFrom(userJID("bob")))

	// The phone answers; the conversation goes on in the same place.
	phone.SendRaw(t, `<message to='`+userJID("bob")+`' type='chat' id='r1'><body>got it</body></message>`)
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PRIVMSG", "bob", "got it")))
	bob.Send("NOTICE alice :a notice too")
	if n := phone.Expect(t, wait, xmpptest.MessageFrom(userJID("bob"))); bodyOf(n) != "a notice too" {
		t.Errorf("notice to the room-only resource: %s", n)
	}
}
