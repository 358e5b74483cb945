package irc_test

import (
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// TestUserLimits: one user cannot flood a channel through the gateway nor
// join more rooms than the admin allows; what is refused never reaches IRC.
func TestUserLimits(t *testing.T) {
	e := newEnv(t, envOptions{limits: transports.Limits{MessagesPerMinute: 60, Burst: 2, MaxRooms: 1}})
	bob, alice := e.bobAndAlice(t, "#one")

	alice.SendRaw(t, `<presence to='`+roomJID("#two")+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	if s := alice.Expect(t, wait, xmpptest.PresenceFrom(roomJID("#two")+"/alice", "error")); s.ErrorCondition() != "resource-constraint" {
		t.Errorf("a second room beyond max_rooms: %s", s)
	}
	bob.ExpectNone(t, 300*time.Millisecond, irctest.Command("JOIN", "#two"))

	for i, body := range []string{"one", "two", "three"} {
		alice.SendRaw(t, `<message to='`+roomJID("#one")+`' id='g`+body+`' type='groupchat'><body>`+body+`</body></message>`)
		if i < 2 {
			bob.Expect(t, wait, irctest.Command("PRIVMSG", "#one", body))
		}
	}
	s := alice.Expect(t, wait, func(s *xmpptest.Stanza) bool { return s.XMLName.Local == "message" && s.Type == "error" })
	if s.ErrorCondition() != "resource-constraint" || !strings.Contains(s.Inner, "Too many messages") || s.ID != "gthree" {
		t.Errorf("a message over the rate: %s", s)
	}
	time.Sleep(1100 * time.Millisecond) // one more message a second
	alice.SendRaw(t, `<message to='`+roomJID("#one")+`' id='gfour' type='groupchat'><body>four</body></message>`)
	if m := bob.Expect(t, wait, irctest.Command("PRIVMSG", "#one")); m.Trailing() != "four" {
		t.Errorf("after the refused message, IRC got %q", m.Raw)
	}
}
