package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/testserver"

	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

const (
	alice  = "alice@" + serverDomain
	friend = "friend%test.example@" + gwDomain
)

// TestPresenceLifecycle: the first available resource logs the user in, a
// status change carries over, the last resource leaving logs them out.
func TestPresenceLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))

	c.SendRaw(t, `<presence><show>away</show><status>lunch</status></presence>`)
	sess, _ := e.net.Session(alice)
	eventually(t, "the legacy side sees away", func() bool {
		p := sess.Presence()
		return p.Show == transports.ShowAway && p.Status == "lunch"
	})

	// A second resource shares the one legacy session.
	c2 := e.client("alice")
	c2.SendRaw(t, `<presence><priority>5</priority></presence>`)
	eventually(t, "the legacy side sees the higher-priority resource", func() bool { return sess.Presence().Show == transports.ShowNone })
	if n := e.net.Logins(); n != 1 {
		t.Errorf("%d legacy logins for two resources, want 1", n)
	}
	c2.SendRaw(t, `<presence type='unavailable'/>`)
	eventually(t, "back to away", func() bool { return sess.Presence().Show == transports.ShowAway })
	if _, ok := e.net.Session(alice); !ok {
		t.Fatal("one resource leaving logged the user out")
	}

	// Probes are answered.
	c.SendRaw(t, `<presence type='probe' to='`+friend+`'/>`)
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))

	c.SendRaw(t, `<presence type='unavailable'/>`)
	eventually(t, "the legacy session is closed", func() bool { _, ok := e.net.Session(alice); return !ok })

	// Coming back logs in again.
	c.SendRaw(t, `<presence/>`)
	e.online(c)
	if n := e.net.Logins(); n != 2 {
		t.Errorf("%d legacy logins after coming back, want 2", n)
	}
}

func TestMessages(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()

	c.SendRaw(t, `<message to='`+friend+`' id='m1' type='chat'><body>hello</body><subject>s</subject><thread>t1</thread></message>`)
	m := c.Expect(t, wait, xmpptest.MessageFrom(friend))
	if m.Type != "chat" || m.Text("jabber:client", "body") != "echo: hello" || m.Text("jabber:client", "thread") != "t1" {
		t.Errorf("echo: %s", m)
	}
	got := e.net.Received()
	if len(got) != 1 || got[0].To != "friend@test.example" || got[0].Body != "hello" || got[0].Subject != "s" || got[0].ID != "m1" {
		t.Errorf("legacy network received %+v", got)
	}

	// A synchronous failure and an asynchronous one both come back as errors.
	c.SendRaw(t, `<message to='nobody%test.example@`+gwDomain+`' id='m2' type='chat'><body>hi</body></message>`)
	m = c.Expect(t, wait, xmpptest.MessageFrom("nobody%test.example@"+gwDomain))
	if m.Type != "error" || m.ErrorCondition() != "item-not-found" {
		t.Errorf("message to a missing user: %s", m)
	}
	c.SendRaw(t, `<message to='bounce%test.example@`+gwDomain+`' id='m3' type='chat'><body>hi</body></message>`)
	m = c.Expect(t, wait, xmpptest.MessageFrom("bounce%test.example@"+gwDomain))
	if m.Type != "error" || m.ID != "m3" || m.ErrorCondition() != "item-not-found" {
		t.Errorf("bounced message: %s", m)
	}

	// Incoming legacy traffic with odd addresses arrives escaped.
	sess, _ := e.net.Session(alice)
	sess.Inject(transports.Message{From: "Odd Name@test.example", Body: "from far away"})
	m = c.Expect(t, wait, xmpptest.MessageFrom(`\4fdd\20\4eame%test.example@`+gwDomain))
	if m.Text("jabber:client", "body") != "from far away" {
		t.Errorf("incoming message: %s", m)
	}
	// Chat states carry nothing and are not errors.
	c.SendRaw(t, `<message to='`+friend+`' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	c.ExpectNone(t, 300*time.Millisecond, xmpptest.MessageFrom(friend))
}

func TestStanzaErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	bob := e.client("bob")

	bob.SendRaw(t, `<message to='`+friend+`' id='e1' type='chat'><body>hi</body></message>`)
	if m := bob.Expect(t, wait, xmpptest.MessageFrom(friend)); m.ErrorCondition() != "registration-required" {
		t.Errorf("unregistered sender: %s", m)
	}
	bob.SendRaw(t, `<message to='x\zz@`+gwDomain+`' id='e2' type='chat'><body>hi</body></message>`)
	if m := bob.Expect(t, wait, xmpptest.MessageFrom(`x\zz@`+gwDomain)); m.ErrorCondition() != "jid-malformed" {
		t.Errorf("undecodable address: %s", m)
	}
	res := bob.IQ(t, wait, `<iq type='get' to='`+friend+`' id='e3'><query xmlns='jabber:iq:last'/></iq>`)
	if res.ErrorCondition() != "service-unavailable" {
		t.Errorf("unsupported iq to a contact: %s", res)
	}
	res = bob.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='e4'><query xmlns='jabber:iq:register'><remove/></query></iq>`)
	if res.ErrorCondition() != "item-not-found" {
		t.Errorf("unregistering while not registered: %s", res)
	}
	// Garbage in a registration form is refused without harm.
	res = bob.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='e5'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "x", "password": "y", "echo": "perhaps"})+`</query></iq>`)
	if res.ErrorCondition() != "not-acceptable" {
		t.Errorf("bad boolean: %s", res)
	}
	// The gateway still serves others.
	alice := e.client("alice")
	e.register(alice, "alice-legacy", "legacy-pw")
}

func TestUnregister(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()
	c.SendRaw(t, `<presence to='`+friend+`' type='subscribe'/>`)
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, "subscribed"))
	eventually(t, "the contact is stored", func() bool {
		cs, _ := e.store.Contacts(t.Context(), alice, gwDomain)
		return len(cs) == 1 && cs[0].Address == "friend@test.example" && cs[0].Subscribed
	})

	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='u1'><query xmlns='jabber:iq:register'><remove/></query></iq>`)
	if res.Type != "result" {
		t.Fatalf("unregister: %s", res)
	}
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "unsubscribed"))
	eventually(t, "the legacy session is closed", func() bool { _, ok := e.net.Session(alice); return !ok })
	if _, err := e.store.Registration(t.Context(), alice, gwDomain); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("registration still stored after unregistering: %v", err)
	}
	if cs, err := e.store.Contacts(t.Context(), alice, gwDomain); err == nil && len(cs) > 0 {
		t.Errorf("contacts still stored after unregistering: %v", cs)
	}
}

// TestComponentReconnect cuts the gateway's connection to the server: the
// gateway reconnects, the legacy session survives, presences come back.
func TestComponentReconnect(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))

	e.proxy.Cut()
	eventually(t, "the gateway notices the cut", func() bool { return !e.gw.Connected() })
	e.waitConnected()
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, ""))
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))
	if n := e.net.Logins(); n != 1 {
		t.Errorf("%d legacy logins, want the one session kept across the reconnect", n)
	}
	c.SendRaw(t, `<message to='`+friend+`' id='m1' type='chat'><body>still here</body></message>`)
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "echo: still here" {
		t.Errorf("after reconnect: %s", m)
	}
}

// TestMessagesWaitForTheUserAfterReconnection: after the component
// connection came back, the legacy network's messages for a user the
// gateway knew online are written only once the user's presence was seen
// again, in order, so that they reach the user's new session directly and
// not through offline storage (where ejabberd 23.01 can leave a message it
// stores while the new session comes online until the next login). The
// client leaves while the link is down, so the gateway does not hear of
// it, as after a server restart. Before the fix both messages came out of
// offline storage, with a <delay/>.
func TestMessagesWaitForTheUserAfterReconnection(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))
	sess, _ := e.net.Session(alice)

	e.proxy.Stall()
	c.Close()
	time.Sleep(300 * time.Millisecond) // its unavailable presence is stuck in the proxy
	e.proxy.Cut()
	e.proxy.Resume()
	eventually(t, "the gateway notices the cut", func() bool { return !e.gw.Connected() })
	e.waitConnected()
	sess.Inject(transports.Message{From: "friend@test.example", ID: "stable-1", Type: transports.Chat, Body: "with an id"})
	sess.Inject(transports.Message{From: "friend@test.example", Type: transports.Chat, Body: "without"})
	time.Sleep(time.Second)

	c = e.client("alice")
	c.SendRaw(t, `<presence/>`)
	for _, want := range []string{"with an id", "without"} {
		m := c.Expect(t, wait, xmpptest.And(xmpptest.MessageFrom(friend), func(s *xmpptest.Stanza) bool { return s.Type == "chat" }))
		if body := m.Text("jabber:client", "body"); body != want {
			t.Errorf("got %q, want %q", body, want)
		}
		if m.Has("urn:xmpp:delay", "delay") {
			t.Errorf("%q came out of offline storage: the gateway wrote it before the user was back\n%s", want, m)
		}
	}
	if n := e.net.Logins(); n != 1 {
		t.Errorf("%d legacy logins, want the one session kept across the reconnection", n)
	}
}

// TestDeadConnectionDetected stalls the network between gateway and server
// without closing it: the keep-alive ping notices and the gateway reconnects.
func TestDeadConnectionDetected(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.proxy.Stall()
	eventually(t, "the gateway notices the dead connection", func() bool { return !e.gw.Connected() })
	e.proxy.Resume()
	e.waitConnected()
	c := e.client("alice")
	res := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if res.Type != "result" {
		t.Errorf("ping after reconnecting: %s", res)
	}
}

// TestRestartLogsOnlineUsersIn stops the gateway and starts a new one on the
// same database: it probes registered users and logs in those online.
func TestRestartLogsOnlineUsersIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()

	e.stop()
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, "unavailable"))
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "unavailable"))
	eventually(t, "the legacy session is closed at shutdown", func() bool { _, ok := e.net.Session(alice); return !ok })

	e.start(envOptions{})
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, ""))
	eventually(t, "the user is logged in again", func() bool { _, ok := e.net.Session(alice); return ok })
	if n := e.net.Logins(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
}

// TestLoginFailure: a legacy login that fails shows the transport as xa with
// the reason, and messages get a clear error instead of vanishing.
func TestLoginFailure(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("alice")
	e.net.FailLogins(&transports.Error{Kind: transports.Unreachable, Text: "test network is down"})
	e.register(c, "alice-legacy", "legacy-pw")
	p := c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, ""))
	if p.Text("jabber:client", "show") != "xa" || !strings.Contains(p.Text("jabber:client", "status"), "test network is down") {
		t.Errorf("transport presence after a failed login: %s", p)
	}
	c.SendRaw(t, `<message to='`+friend+`' id='m1' type='chat'><body>hi</body></message>`)
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); m.ErrorCondition() != "recipient-unavailable" {
		t.Errorf("message while not logged in: %s", m)
	}
	// A passing failure is retried by itself once the network is back.
	e.net.FailLogins(nil)
	e.online(c)
}

// TestRefusedLoginIsNotRetried: credentials the network refuses are not
// tried again and again (that gets accounts locked); new settings are.
func TestRefusedLoginIsNotRetried(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("alice")
	e.net.FailLogins(&transports.Error{Kind: transports.NotAuthorized, Text: "password changed"})
	e.register(c, "alice-legacy", "legacy-pw")
	if p := c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "")); p.Text("jabber:client", "show") != "xa" {
		t.Fatalf("after a refused login: %s", p)
	}
	e.net.FailLogins(nil)
	c.SendRaw(t, `<presence><show>away</show></presence>`)
	time.Sleep(500 * time.Millisecond)
	if n := e.net.Logins(); n != 0 {
		t.Fatalf("%d logins with refused credentials", n)
	}
	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='r2'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy", "password": "legacy-pw"})+`</query></iq>`)
	if res.Type != "result" {
		t.Fatalf("re-registration: %s", res)
	}
	e.online(c)
}

// TestOneUserCannotHurtOthers: a legacy server that hangs for one user, and a
// transport that panics for that user, leave other users untouched.
func TestOneUserCannotHurtOthers(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.net.AddAccount("bob-legacy", "bob-legacy-pw", "friend@test.example")
	alice := e.client("alice")
	e.register(alice, "alice-legacy", "legacy-pw")
	e.online(alice)
	bob := e.client("bob")
	e.register(bob, "bob-legacy", "bob-legacy-pw")
	e.online(bob)

	alice.SendRaw(t, `<message to='panic%test.example@`+gwDomain+`' id='p1' type='chat'><body>boom</body></message>`)
	alice.SendRaw(t, `<message to='slow%test.example@`+gwDomain+`' id='s1' type='chat'><body>wait</body></message>`)
	start := time.Now()
	bob.SendRaw(t, `<message to='`+friend+`' id='b1' type='chat'><body>unaffected</body></message>`)
	if m := bob.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "echo: unaffected" {
		t.Errorf("bob's echo: %s", m)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("bob waited %v behind alice's hung legacy server", d)
	}
	// Alice herself survives the panic and, once the hung send times out,
	// hears about both failures and is served again.
	if m := alice.Expect(t, wait, xmpptest.MessageFrom("panic%test.example@"+gwDomain)); m.ErrorCondition() != "internal-server-error" {
		t.Errorf("after a panic: %s", m)
	}
	if m := alice.Expect(t, wait, xmpptest.MessageFrom("slow%test.example@"+gwDomain)); m.ErrorCondition() != "remote-server-timeout" {
		t.Errorf("after a hang: %s", m)
	}
	alice.SendRaw(t, `<message to='`+friend+`' id='a1' type='chat'><body>still alive</body></message>`)
	if m := alice.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "echo: still alive" {
		t.Errorf("alice after a panic and a hang: %s", m)
	}
}

// TestWrongSecretKeepsRetrying: a secret the server refuses is logged as an
// error and retried, never a crash or a tight loop. The second is counted
// from the first refusal: ejabberd takes 0.6 to 0.9 s to refuse the first
// handshake after it starts (Prosody a few milliseconds).
func TestWrongSecretKeepsRetrying(t *testing.T) {
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     serverDomain,
		Components: []testserver.Component{{Domain: gwDomain, Secret: gwSecret}},
	})
	var logs testserver.SyncBuffer
	store, err := registry.Open(filepath.Join(t.TempDir(), "p.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gw, err := gateway.New(gateway.Config{
		Domain: gwDomain, Secret: "wrong-secret-value", Server: p.ComponentAddr,
		Transport: testnet.New(), Store: store,
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	for deadline := time.Now().Add(wait); !strings.Contains(logs.String(), "cannot connect"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no refusal within %v; logs:\n%s", wait, logs.String())
		}
	}
	time.Sleep(time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	out := logs.String()
	attempts := strings.Count(out, "cannot connect")
	if gw.Connected() || attempts < 2 || attempts > 11 || !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "not-authorized") {
		t.Errorf("%d attempts in the second after the first; logs:\n%s", attempts, out)
	}
	if strings.Contains(out, "wrong-secret-value") {
		t.Errorf("the secret was logged:\n%s", out)
	}
}

// TestEventsDuringLogin: a legacy network that speaks before Login returns
// (greeting, contacts online) loses nothing.
func TestEventsDuringLogin(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.net.SlowLogins(300 * time.Millisecond)
	c := e.client("alice")
	e.register(c, "alice-legacy", "legacy-pw")
	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='g1'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy", "greeting": "welcome"})+`</query></iq>`)
	if res.Type != "result" {
		t.Fatalf("re-registration: %s", res)
	}
	if m := c.Expect(t, wait, xmpptest.MessageFrom(gwDomain)); m.Text("jabber:client", "body") != "welcome" {
		t.Errorf("greeting: %s", m)
	}
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))
	c.SendRaw(t, `<message to='`+friend+`' id='m1' type='chat'><body>hi</body></message>`)
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "echo: hi" {
		t.Errorf("echo: %s", m)
	}
}

// TestServerRestart restarts the XMPP server itself: the gateway retries with
// backoff while the port is closed, reconnects, and the user, once back
// online, is served again with the registration intact.
func TestServerRestart(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.aliceOnline()

	e.server.Restart(t)
	e.waitConnected()
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)
	e.online(c)
	c.SendRaw(t, `<message to='`+friend+`' id='m1' type='chat'><body>after restart</body></message>`)
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "echo: after restart" {
		t.Errorf("after a server restart: %s", m)
	}
	if _, err := e.store.Registration(t.Context(), alice, gwDomain); err != nil {
		t.Errorf("registration after a server restart: %v", err)
	}
}
