package gateway_test

import (
	"strings"
	"testing"

	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// TestContactsAreCapped: beyond max_contacts, a subscription to one more
// legacy contact is refused and the user is told why; removing one makes
// room.
func TestContactsAreCapped(t *testing.T) {
	e := newEnv(t, envOptions{limits: transports.Limits{MaxContacts: 2}})
	c := e.aliceOnline()
	contact := func(i int) string { return "c" + string(rune('0'+i)) + "%test.example@" + gwDomain }

	for i := range 2 {
		c.SendRaw(t, `<presence to='`+contact(i)+`' type='subscribe'/>`)
		c.Expect(t, wait, xmpptest.PresenceFrom(contact(i), "subscribed"))
	}
	c.SendRaw(t, `<presence to='`+contact(2)+`' type='subscribe'/>`)
	c.Expect(t, wait, xmpptest.PresenceFrom(contact(2), "unsubscribed"))
	m := c.Expect(t, wait, xmpptest.MessageFrom(gwDomain))
	if body := m.Text("jabber:client", "body"); !strings.Contains(body, "2 contacts") || !strings.Contains(body, "c2@test.example") {
		t.Errorf("the user was told: %q", body)
	}
	cs, err := e.store.Contacts(t.Context(), alice, gwDomain)
	if err != nil || len(cs) != 2 {
		t.Fatalf("stored contacts: %v, %v; want 2", cs, err)
	}

	c.SendRaw(t, `<presence to='`+contact(0)+`' type='unsubscribe'/>`)
	eventually(t, "the contact is removed", func() bool {
		cs, err := e.store.Contacts(t.Context(), alice, gwDomain)
		return err == nil && len(cs) == 1
	})
	c.SendRaw(t, `<presence to='`+contact(2)+`' type='subscribe'/>`)
	c.Expect(t, wait, xmpptest.PresenceFrom(contact(2), "subscribed"))
}
