package gateway_test

import (
	"fmt"
	"sync"
	"testing"

	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestManyUsersConcurrently drives a bounded crowd through registration,
// login and a few messages at once: every user gets exactly their own
// echoes, in order, and each has one legacy session.
func TestManyUsersConcurrently(t *testing.T) {
	const users, messages = 30, 5
	e := newEnv(t, envOptions{})
	for i := range users {
		name := fmt.Sprintf("user%02d", i)
		e.server.AddUser(t, name, name+"-pw")
		e.net.AddAccount(name+"-legacy", "pw", "friend@test.example")
	}
	clients := make([]*xmpptest.Client, users)
	for i := range clients {
		clients[i] = e.client(fmt.Sprintf("user%02d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Subtests cannot share e.t; collect failures as errors instead.
			ft := &failRecorder{TB: t}
			defer func() {
				if r := recover(); r != nil && r != errFailNow {
					panic(r)
				}
				if ft.err != nil {
					errs <- fmt.Errorf("user%02d: %v", i, ft.err)
				}
			}()
			register(ft, c, fmt.Sprintf("user%02d-legacy", i), "pw")
			c.Expect(ft, wait, xmpptest.PresenceFrom(gwDomain, ""))
			for m := range messages {
				c.SendRaw(ft, fmt.Sprintf(`<message to='%s' id='m%d' type='chat'><body>%d-%d</body></message>`, friend, m, i, m))
			}
			for m := range messages {
				got := c.Expect(ft, wait, xmpptest.MessageFrom(friend))
				if want := fmt.Sprintf("echo: %d-%d", i, m); got.Text("jabber:client", "body") != want {
					ft.Errorf("message %d: got %s, want %q", m, got, want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.net.Logins(); n != users {
		t.Errorf("%d legacy logins for %d users", n, users)
	}
}
