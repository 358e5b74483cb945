package email_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports/email"
)

// TestXMPPServerRestartUnderMailTraffic restarts the XMPP server while
// mail keeps arriving: before, during and after the outage. Once the user
// is back online every mail has reached them, exactly once by stanza id (a
// mail the server took just as it went down may come twice under its one
// id, which clients drop), and new mail keeps coming.
func TestXMPPServerRestartUnderMailTraffic(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	r := newReceived()
	ids := map[string]string{} // stanza id → body

	deliverBatch(t, e, carol, alice, 0, 30)
	r.collect(t, c, carol, 5, wait) // mail is flowing to XMPP

	// Mail keeps arriving, a few every 20ms, while Prosody restarts.
	const during = 40
	bg := &tb.Background{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 30; i < 30+during; i++ {
			e.mail.Deliver(bg, alice, rawMail(carol, alice, "batch", fmt.Sprintf("mail %03d", i)))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	e.xmpp.Restart(t)
	wg.Wait()
	bg.Report(t)

	// The old client's connection is gone; what it got before counts.
	before := drained(c, carol)
	for _, m := range before {
		r.add(m)
	}
	c = e.client("alice")
	c.SendRaw(t, `<presence/>`)
	c.Expect(t, 2*wait, xmpptest.PresenceFrom(gwDomain, ""))
	deliverBatch(t, e, carol, alice, 30+during, 10)
	total := 30 + during + 10
	r.collect(t, c, carol, total, 3*wait)
	c.ExpectNone(t, 1500*time.Millisecond, chatFrom(carol))

	for i := range total {
		if r.seen[fmt.Sprintf("mail %03d", i)] == 0 {
			t.Errorf("mail %03d was lost", i)
		}
	}
	// Exactly once by stanza id: a mail the server took just as it went
	// down may come again, but only under its own id (and origin-id),
	// which clients drop; no two mails share an id.
	if len(r.newIDs) > 0 {
		t.Errorf("repeats under a new id: %v", r.newIDs)
	}
	for body, id := range r.ids {
		if other, dup := ids[id]; dup {
			t.Errorf("stanza id %s used for %s and %s", id, other, body)
		}
		ids[id] = body
	}
	t.Logf("%d mails, %d of them to the client connected before the restart, %d repeated under the same id", total, 5+len(before), len(r.repeats))
}

// TestMailWaitsForTheUserAfterReconnection: after the component
// connection came back, mail is handed to the XMPP server only once the
// user's presence was seen on the new connection, so that it reaches the
// user's new session directly rather than through offline storage. The
// user's client logs out while the link to the gateway is down, so the
// gateway never hears of it, as after a server restart; mail then arrives,
// and the client logs in again. Before the fix the gateway wrote the mail
// as soon as it was back: it came out of offline storage, with a <delay/>.
// ejabberd 23.01 may even strand a message there for good, until the
// user's next login, when it stores it while the user's new session comes
// online (its store, 50–80 ms under load, ends after the new session has
// emptied the storage), although it answered the ping sent after it: that
// lost about 1 run in 3 of TestXMPPServerRestartUnderMailTraffic under
// load.
func TestMailWaitsForTheUserAfterReconnection(t *testing.T) {
	e, c := newProxiedEnv(t)
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	r := newReceived()
	deliverBatch(t, e, carol, alice, 0, 1)
	r.collect(t, c, carol, 1, wait)
	time.Sleep(500 * time.Millisecond) // the server's answer to the gateway's ping after the mail

	// The client's unavailable presence is lost with the link.
	e.proxy.Stall()
	c.Close()
	time.Sleep(300 * time.Millisecond)
	accepted := e.proxy.Accepted()
	e.proxy.Cut()
	e.proxy.Resume()
	deadline := time.Now().Add(wait)
	for e.proxy.Accepted() == accepted || !e.gw.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not reconnect within %v", wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Mail arrives, the gateway fetches it (the watcher logs it) and has
	// time to hand it over, all before the client is back.
	fetched := strings.Count(e.logs.String(), `msg="email: new mail"`)
	deliverBatch(t, e, carol, alice, 1, 1)
	for strings.Count(e.logs.String(), `msg="email: new mail"`) == fetched {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not fetch the new mail within %v", wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)

	c = e.client("alice")
	c.SendRaw(t, `<presence/>`)
	m := c.Expect(t, wait, chatFrom(carol))
	if body := m.Text("", "body"); body != "mail 001" {
		t.Fatalf("got %q, want mail 001", body)
	}
	if m.Has("urn:xmpp:delay", "delay") {
		t.Errorf("the mail came out of offline storage: the gateway handed it over before the user was back\n%s", m)
	}
	c.ExpectNone(t, time.Second, chatFrom(carol))
}

// drained takes, from a client whose connection ended, every chat message
// from addr that it had received.
func drained(c *xmpptest.Client, addr string) []*xmpptest.Stanza {
	var out []*xmpptest.Stanza
	q := &tb.Background{}
	for {
		var m *xmpptest.Stanza
		done := make(chan struct{})
		go func() {
			defer close(done)
			m = c.Expect(q, time.Millisecond, chatFrom(addr))
		}()
		<-done
		if m == nil {
			return out
		}
		out = append(out, m)
	}
}

// TestIMAPDropWhileIdle drops the watcher's IMAP connection while it waits
// in IDLE, twice, with no server restart: IDLE resumes, and mail that
// arrives after each drop is delivered once, with none of the earlier mail
// again.
func TestIMAPDropWhileIdle(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	r := newReceived()
	n := 0
	for round := range 3 {
		deliverBatch(t, e, carol, alice, n, 5)
		n += 5
		r.collect(t, c, carol, n, wait)
		if round < 2 {
			// Nothing left to fetch: the watcher is back in IDLE.
			time.Sleep(300 * time.Millisecond)
			e.mail.Kick(t, "alice")
		}
	}
	c.ExpectNone(t, 1500*time.Millisecond, chatFrom(carol))
	for i := range n {
		if k := r.seen[fmt.Sprintf("mail %03d", i)]; k != 1 {
			t.Errorf("mail %03d arrived %d times", i, k)
		}
	}
}

// TestComponentLinkCutUnderMailTraffic cuts the gateway's connection to
// Prosody three times while mail keeps arriving and the user stays online:
// every mail reaches the user, none twice under different ids.
func TestComponentLinkCutUnderMailTraffic(t *testing.T) {
	e, c := newProxiedEnv(t)
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	r := newReceived()

	const total = 90
	bg := &tb.Background{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			e.mail.Deliver(bg, alice, rawMail(carol, alice, "batch", fmt.Sprintf("mail %03d", i)))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for cut := 1; cut <= 3; cut++ {
		r.collect(t, c, carol, cut*total/4, 2*wait)
		e.proxy.Cut()
	}
	wg.Wait()
	bg.Report(t)
	r.collect(t, c, carol, total, 3*wait)
	c.ExpectNone(t, 1500*time.Millisecond, chatFrom(carol))
	for i := range total {
		if k := r.seen[fmt.Sprintf("mail %03d", i)]; k == 0 {
			t.Errorf("mail %03d was lost", i)
		}
	}
	if len(r.newIDs) > 0 {
		t.Errorf("repeats under a new id: %v", r.newIDs)
	}
	t.Logf("%d mails, 3 cuts: %d repeated under the same id", total, len(r.repeats))
}

// TestXMPPServerRestartsWhileMailFlowsOffline: with while_offline, the
// gateway keeps handing mail to the XMPP server for a user who is offline,
// to keep in its offline storage. Prosody restarts twice while 200 mails
// flow; when the user comes back, every mail is there, none lost, repeats
// only under the same id. A mail the gateway had written but the server had
// not yet taken when it went down used to be lost: the gateway advanced the
// mailbox position on the write alone.
func TestXMPPServerRestartsWhileMailFlowsOffline(t *testing.T) {
	e := newEnv(t, func(c *email.Config, _ *testserver.Mail) { c.WhileOffline = true })
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	r := newReceived()
	const total = 200
	deliverBatch(t, e, carol, alice, 0, total)
	r.collect(t, c, carol, 3, wait)
	e.xmpp.Restart(t)
	for _, m := range drained(c, carol) {
		r.add(m)
	}
	if e.xmpp.Kind == testserver.KindEjabberd {
		// Restarted again within a second of its start, before it has
		// settled, ejabberd 23.01 never delivers to the user the mails it
		// acknowledged around then (it answered the ping sent after each);
		// the cause inside ejabberd is not known. The second restart waits
		// until the gateway is back on the first one, and 2 s more: with
		// 1 s, at ejabberd's default (unlimited) component stanza size, the
		// gateway handed the last 114 mails over just before the restart
		// and ejabberd lost them all (3 runs in 3).
		deadline := time.Now().Add(wait)
		for !e.gw.Connected() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(300 * time.Millisecond) // the gateway is back, writing to offline storage
	e.xmpp.Restart(t)

	c = e.client("alice")
	c.SendRaw(t, `<presence/>`)
	r.collect(t, c, carol, total, 3*wait)
	c.ExpectNone(t, 1500*time.Millisecond, chatFrom(carol))
	if len(r.newIDs) > 0 {
		t.Errorf("repeats under a new id: %v", r.newIDs)
	}
	t.Logf("%d mails, 2 restarts: %d repeated under the same id", total, len(r.repeats))
}

// newProxiedEnv registers alice and restarts the gateway, with the same
// database, through a proxy that can cut its link to the XMPP server; alice
// is online and sees the transport.
func newProxiedEnv(t *testing.T) (*env, *xmpptest.Client) {
	t.Helper()
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	e.stop()
	e.proxy = testserver.NewProxy(t, e.xmpp.ComponentAddr)
	e.start()
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, ""))
	return e, c
}
