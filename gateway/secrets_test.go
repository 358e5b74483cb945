package gateway_test

import (
	"context"
	"strings"
	"testing"

	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// TestSecretBoundToFields: with the password bound to the username, a
// registered user who changes the username and keeps the password (empty
// in XEP-0077, "." in the chat settings command) is refused with a text
// naming the field, and nothing of the change is stored, although the
// other account's password is the same. With the password typed, the
// change goes through.
func TestSecretBoundToFields(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.stop()
	e.net.PasswordBoundTo = []string{"username"}
	e.start(envOptions{})
	e.net.AddAccount("mallory-legacy", "legacy-pw")
	alice := e.aliceOnline()
	user := alice.JID().Bare().String()
	stored := func() string {
		r, err := e.store.Registration(context.Background(), user, gwDomain)
		if err != nil {
			t.Fatal(err)
		}
		return r.Fields["username"]
	}

	res := alice.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='r1'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "mallory-legacy"})+`</query></iq>`)
	if res.Type != "error" || res.ErrorCondition() != "not-acceptable" || !strings.Contains(res.Inner, "you changed Username: enter the password again") {
		t.Errorf("XEP-0077, new username, empty password: %s", res)
	}
	// The form says so too.
	form := alice.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='r2'><query xmlns='jabber:iq:register'/></iq>`)
	if !strings.Contains(form.Inner, "unless you change Username") {
		t.Errorf("the form does not say what the password is bound to: %s", form)
	}

	say := func(text string) {
		alice.SendRaw(t, `<message to='`+gwDomain+`' type='chat'><body>`+text+`</body></message>`)
	}
	expect := func(want string) {
		t.Helper()
		for i := 0; ; i++ {
			m := alice.Expect(t, wait, xmpptest.MessageFrom(gwDomain))
			if strings.Contains(m.Text("", "body"), want) {
				return
			}
			if i > 50 {
				t.Fatalf("the transport never said %q", want)
			}
		}
	}
	say("settings")
	expect("Username")
	say("mallory-legacy")
	expect("Password")
	say(".")
	expect("Greeting")
	say(".")
	expect("Echo")
	say(".")
	expect("enter the password again")
	if got := stored(); got != "alice-legacy" {
		t.Fatalf("the username was changed to %q", got)
	}

	// An unbound field changes with the password kept.
	res = alice.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='r3'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy", "greeting": "hello"})+`</query></iq>`)
	if res.Type != "result" {
		t.Errorf("a greeting change with the password kept: %s", res)
	}
	// Typed, the password goes with the new username.
	res = alice.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='r4'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "mallory-legacy", "password": "legacy-pw"})+`</query></iq>`)
	if res.Type != "result" || stored() != "mallory-legacy" {
		t.Errorf("new username, password typed: %s", res)
	}
}

// TestRegistrationAttemptsLimited: a user who is never online, whose loop
// ends after each attempt, still gets only the configured number of
// registration attempts in the window; the next is refused with when to
// try again and never reaches the transport. Another user is not affected.
func TestRegistrationAttemptsLimited(t *testing.T) {
	e := newEnv(t, envOptions{limits: transports.Limits{RegistrationAttempts: 2}})
	bob := e.client("bob")
	attempt := func(c *xmpptest.Client, id, password string) *xmpptest.Stanza {
		return c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='`+id+`'><query xmlns='jabber:iq:register'>`+
			submitForm(map[string]string{"username": "alice-legacy", "password": password})+`</query></iq>`)
	}
	for i, id := range []string{"a1", "a2"} {
		if res := attempt(bob, id, "guess"); res.ErrorCondition() != "not-authorized" {
			t.Fatalf("attempt %d: %s", i+1, res)
		}
	}
	// The right password now: refused all the same, without trying it.
	res := attempt(bob, "a3", "legacy-pw")
	if res.ErrorCondition() != "resource-constraint" || !strings.Contains(res.Inner, "at most 2 in 10m. Try again in ") {
		t.Errorf("attempt 3: %s", res)
	}
	if _, err := e.store.Registration(context.Background(), bob.JID().Bare().String(), gwDomain); err == nil {
		t.Error("the refused attempt registered bob")
	}
	alice := e.client("alice")
	if res := attempt(alice, "b1", "legacy-pw"); res.Type != "result" {
		t.Errorf("another user: %s", res)
	}
}
