package gateway_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/registry"
)

const nsCommands = "http://jabber.org/protocol/commands"

// command sends an ad-hoc command iq and returns the answer.
func command(t *testing.T, c *xmpptest.Client, id, node, session, action, form string) *xmpptest.Stanza {
	t.Helper()
	attrs := ` node='` + node + `'`
	if session != "" {
		attrs += ` sessionid='` + session + `'`
	}
	if action != "" {
		attrs += ` action='` + action + `'`
	}
	return c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='`+id+`'><command xmlns='`+nsCommands+`'`+attrs+`>`+form+`</command></iq>`)
}

func submit(values map[string]string) string {
	var b strings.Builder
	b.WriteString(`<x xmlns='jabber:x:data' type='submit'>`)
	for k, v := range values {
		b.WriteString(`<field var='` + k + `'><value>` + v + `</value></field>`)
	}
	b.WriteString(`</x>`)
	return b.String()
}

var (
	sessionRe = regexp.MustCompile(`sessionid="([^"]+)"`)
	statusRe  = regexp.MustCompile(`status="([^"]+)"`)
)

func attr(re *regexp.Regexp, s *xmpptest.Stanza) string {
	if m := re.FindStringSubmatch(s.Inner); m != nil {
		return m[1]
	}
	return ""
}

func hasField(s *xmpptest.Stanza, name string) bool {
	return strings.Contains(s.Inner, `var="`+name+`"`)
}

func (e *env) registered(user string) bool {
	_, err := e.store.Registration(context.Background(), user, gwDomain)
	return err == nil
}

// TestAdhocRegistration walks the multi-step ad-hoc registration with
// prev, a refused value and a refused password, then completes it.
func TestAdhocRegistration(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)

	items := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='i1'><query xmlns='http://jabber.org/protocol/disco#items' node='`+nsCommands+`'/></iq>`)
	if !strings.Contains(items.Inner, `node="register"`) || strings.Contains(items.Inner, `node="unregister"`) || strings.Contains(items.Inner, "admin#") {
		t.Errorf("commands offered to an unregistered user: %s", items)
	}

	res := command(t, c, "a1", "register", "", "execute", "")
	sid := attr(sessionRe, res)
	if attr(statusRe, res) != "executing" || sid == "" || !hasField(res, "username") || !hasField(res, "password") || hasField(res, "greeting") {
		t.Fatalf("first step: %s", res)
	}
	// A required field left out: the same step again, with an error note.
	res = command(t, c, "a2", "register", sid, "next", submit(map[string]string{"username": "alice-legacy"}))
	if attr(statusRe, res) != "executing" || !strings.Contains(res.Inner, `type="error"`) || !strings.Contains(res.Inner, "Password is required") || !hasField(res, "password") {
		t.Fatalf("missing password: %s", res)
	}
	res = command(t, c, "a3", "register", sid, "next", submit(map[string]string{"username": "alice-legacy", "password": "wrong"}))
	if !hasField(res, "greeting") || !strings.Contains(res.Inner, "<prev>") {
		t.Fatalf("second step: %s", res)
	}
	res = command(t, c, "a4", "register", sid, "prev", "")
	if !hasField(res, "username") {
		t.Fatalf("prev: %s", res)
	}
	command(t, c, "a5", "register", sid, "next", submit(map[string]string{"username": "alice-legacy", "password": "wrong"}))
	res = command(t, c, "a6", "register", sid, "complete", submit(map[string]string{"greeting": "hello"}))
	if attr(statusRe, res) != "executing" || !strings.Contains(res.Inner, "Registration refused") || !hasField(res, "username") {
		t.Fatalf("wrong password: %s", res)
	}
	if e.registered("alice@" + serverDomain) {
		t.Fatal("a refused registration was stored")
	}
	command(t, c, "a7", "register", sid, "next", submit(map[string]string{"username": "alice-legacy", "password": "legacy-pw"}))
	res = command(t, c, "a8", "register", sid, "complete", submit(map[string]string{"greeting": "hello"}))
	if attr(statusRe, res) != "completed" || !strings.Contains(res.Inner, "Registered") {
		t.Fatalf("completion: %s", res)
	}
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribe"))
	if !e.registered("alice@" + serverDomain) {
		t.Fatal("the registration was not stored")
	}
	// The session is gone: reusing it is an error.
	if res := command(t, c, "a9", "register", sid, "next", ""); res.Type != "error" {
		t.Errorf("a finished session was accepted: %s", res)
	}
	items = c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='i2'><query xmlns='http://jabber.org/protocol/disco#items' node='`+nsCommands+`'/></iq>`)
	if strings.Contains(items.Inner, `node="register"`) || !strings.Contains(items.Inner, `node="unregister"`) || !strings.Contains(items.Inner, `node="settings"`) {
		t.Errorf("commands offered to a registered user: %s", items)
	}
}

// TestAdhocCancel: a registration canceled in the middle stores nothing.
func TestAdhocCancel(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("alice")
	res := command(t, c, "c1", "register", "", "execute", "")
	sid := attr(sessionRe, res)
	command(t, c, "c2", "register", sid, "next", submit(map[string]string{"username": "alice-legacy", "password": "legacy-pw"}))
	res = command(t, c, "c3", "register", sid, "cancel", "")
	if attr(statusRe, res) != "canceled" {
		t.Fatalf("cancel: %s", res)
	}
	if e.registered("alice@" + serverDomain) {
		t.Fatal("a canceled registration was stored")
	}
}

// TestChatCommands registers, shows the status, changes a setting and
// unregisters, all by chatting with the transport; the password is never
// echoed.
func TestChatCommands(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)
	var said []string
	say := func(text string) {
		c.SendRaw(t, `<message to='`+gwDomain+`' type='chat'><body>`+text+`</body></message>`)
	}
	// expect reads the transport's messages until one says want.
	expect := func(want string) string {
		t.Helper()
		for {
			m := c.Expect(t, wait, xmpptest.MessageFrom(gwDomain))
			body := m.Text("", "body")
			said = append(said, body)
			if strings.Contains(body, want) {
				return body
			}
			if len(said) > 200 {
				t.Fatalf("the transport never said %q; it said %q", want, said)
			}
		}
	}
	say("help")
	expect("register")
	say("frobnicate")
	expect("Unknown command")
	say("register")
	expect("Username?")
	say("alice-legacy")
	expect("Careful")
	expect("Password?")
	say("legacy-pw")
	expect("Greeting")
	say("-")
	expect("Echo")
	say("maybe")
	expect("Not accepted")
	say("yes")
	expect("Registered")
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribe"))
	if !e.registered("alice@" + serverDomain) {
		t.Fatal("chat registration not stored")
	}
	say("status")
	expect("Registered with")
	say("settings")
	expect("username: alice-legacy")
	expect("Username")
	say(".")
	expect("Password")
	say(".")
	expect("Greeting")
	say("hi there")
	expect("Echo")
	say("no")
	expect("Settings saved")
	r, err := e.store.Registration(context.Background(), "alice@"+serverDomain, gwDomain)
	if err != nil || r.Fields["greeting"] != "hi there" || r.Secrets["password"] != "legacy-pw" {
		t.Fatalf("settings after the change: %+v, %v", r.Fields, err)
	}
	say("unregister")
	expect("Really unregister")
	say("cancel")
	expect("Canceled")
	say("unregister")
	expect("Really unregister")
	say("yes")
	expect("Unregistered")
	if e.registered("alice@" + serverDomain) {
		t.Fatal("still registered")
	}
	for _, s := range said {
		if strings.Contains(s, "legacy-pw") {
			t.Errorf("the password was echoed: %q", s)
		}
	}
}

// TestAdminCommands: refused to non-admins; an admin lists 250 users a
// page at a time, shows statistics, announces, and removes a user.
func TestAdminCommands(t *testing.T) {
	e := newEnv(t, envOptions{admins: []string{"bob@" + serverDomain}})
	ctx := context.Background()
	for i := 0; i < 250; i++ {
		r := registry.Registration{User: fmt.Sprintf("user%03d@%s", i, serverDomain), Transport: gwDomain, Fields: map[string]string{"username": "u"}, Secrets: map[string]string{"password": "p"}}
		if err := e.store.PutRegistration(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	alice := e.aliceOnline()
	res := command(t, alice, "n1", "http://jabber.org/protocol/admin#get-registered-users-list", "", "execute", "")
	if res.Type != "error" || res.ErrorCondition() != "forbidden" {
		t.Fatalf("admin command for a non-admin: %s", res)
	}
	items := alice.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='i1'><query xmlns='http://jabber.org/protocol/disco#items' node='`+nsCommands+`'/></iq>`)
	if strings.Contains(items.Inner, "admin#") {
		t.Errorf("admin commands shown to a non-admin: %s", items)
	}
	alice.SendRaw(t, `<message to='`+gwDomain+`' type='chat'><body>users</body></message>`)
	if m := alice.Expect(t, wait, xmpptest.MessageFrom(gwDomain)); !strings.Contains(m.Text("", "body"), "Only the gateway's administrators") {
		t.Errorf("chat admin command for a non-admin: %s", m)
	}

	bob := e.client("bob")
	items = bob.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='i2'><query xmlns='http://jabber.org/protocol/disco#items' node='`+nsCommands+`'/></iq>`)
	if !strings.Contains(items.Inner, "admin#announce") {
		t.Errorf("admin commands not shown to an admin: %s", items)
	}
	seen := map[string]bool{}
	userRe := regexp.MustCompile(`user\d{3}@` + serverDomain)
	res = command(t, bob, "p1", "http://jabber.org/protocol/admin#get-registered-users-list", "", "execute", "")
	sid := attr(sessionRe, res)
	for page := 1; ; page++ {
		for _, u := range userRe.FindAllString(res.Inner, -1) {
			seen[u] = true
		}
		t.Logf("page %d: %d users, status %s", page, len(userRe.FindAllString(res.Inner, -1)), attr(statusRe, res))
		if page > 5 {
			t.Fatal("too many pages")
		}
		if attr(statusRe, res) == "completed" {
			break
		}
		if n := len(userRe.FindAllString(res.Inner, -1)); n > 100 {
			t.Fatalf("page %d has %d users", page, n)
		}
		res = command(t, bob, fmt.Sprintf("p%d", page+1), "http://jabber.org/protocol/admin#get-registered-users-list", sid, "next", "")
	}
	if len(seen) != 250 {
		t.Errorf("the pages list %d of the 250 users", len(seen))
	}

	res = command(t, bob, "s1", "http://passerelle.dev/admin#stats", "", "execute", "")
	if !strings.Contains(res.Inner, "Registered users: 251") {
		t.Errorf("stats: %s", res)
	}
	res = command(t, bob, "an1", "http://jabber.org/protocol/admin#announce", "", "execute", "")
	res = command(t, bob, "an2", "http://jabber.org/protocol/admin#announce", attr(sessionRe, res), "complete", submit(map[string]string{"body": "Maintenance at noon"}))
	if !strings.Contains(res.Inner, "Sent to 1 online users") {
		t.Errorf("announce: %s", res)
	}
	if m := alice.Expect(t, wait, xmpptest.MessageFrom(gwDomain)); m.Type != "headline" || m.Text("", "body") != "Maintenance at noon" {
		t.Errorf("announcement: %s", m)
	}
	res = command(t, bob, "u1", "http://passerelle.dev/admin#show-user", "", "execute", "")
	res = command(t, bob, "u2", "http://passerelle.dev/admin#show-user", attr(sessionRe, res), "complete", submit(map[string]string{"jid": "alice@" + serverDomain}))
	if !strings.Contains(res.Inner, "Session: connected") || !strings.Contains(res.Inner, "alice-legacy") {
		t.Errorf("show user: %s", res)
	}
	res = command(t, bob, "r1", "http://jabber.org/protocol/admin#delete-user", "", "execute", "")
	command(t, bob, "r2", "http://jabber.org/protocol/admin#delete-user", attr(sessionRe, res), "complete", submit(map[string]string{"jid": "alice@" + serverDomain}))
	alice.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "unsubscribe"))
	deadline := time.Now().Add(wait)
	for e.registered("alice@" + serverDomain) {
		if time.Now().After(deadline) {
			t.Fatal("alice was not removed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
