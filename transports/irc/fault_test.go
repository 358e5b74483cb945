package irc_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// quietTB lets a traffic goroutine use a harness: a failure (the XMPP
// connection going away under it) only stops that goroutine.
type quietTB struct{ tb.TB }

func (quietTB) Helper()               {}
func (quietTB) Cleanup(func())        {}
func (quietTB) Errorf(string, ...any) {}
func (quietTB) Fatal(...any)          { runtime.Goexit() }
func (quietTB) Fatalf(string, ...any) { runtime.Goexit() }
func (quietTB) Logf(string, ...any)   {}
func (quietTB) Skip(...any)           { runtime.Goexit() }

// traffic keeps messages flowing in a room until stop: an IRC user and XMPP
// users each write a line every few milliseconds, bounded in count.
type traffic struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	sent  atomic.Int64
}

// confirmWait is the gateway's wait for resources to show up again after
// a reconnection (gateway.confirmWait).
const confirmWait = 10 * time.Second

const (
	trafficEvery = 20 * time.Millisecond
	trafficMax   = 1500 // lines per sender, at most
)

func startTraffic() *traffic { return &traffic{stopc: make(chan struct{})} }

func (tr *traffic) loop(send func(i int) bool) {
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		t := time.NewTicker(trafficEvery)
		defer t.Stop()
		for i := 0; i < trafficMax; i++ {
			select {
			case <-tr.stopc:
				return
			case <-t.C:
			}
			if !send(i) {
				return
			}
			tr.sent.Add(1)
		}
	}()
}

// fromIRC has an IRC client write to channel.
func (tr *traffic) fromIRC(c *irctest.Client, channel string) {
	tr.loop(func(i int) bool {
		c.Send(fmt.Sprintf("PRIVMSG %s :irc line %d", channel, i))
		return true
	})
}

// fromXMPP has an XMPP client write to the room until its connection fails.
func (tr *traffic) fromXMPP(c *xmpptest.Client, channel, who string) {
	tr.loop(func(i int) bool {
		c.SendRaw(quietTB{}, fmt.Sprintf(`<message to='%s' type='groupchat' id='%s-%d'><body>%s line %d</body></message>`, roomJID(channel), who, i, who, i))
		return true
	})
}

func (tr *traffic) stop() {
	close(tr.stopc)
	tr.wg.Wait()
}

// waitServing waits until the gateway answers a ping through a freshly
// connected XMPP server.
func (e *env) waitServing(c *xmpptest.Client) {
	e.t.Helper()
	deadline := time.Now().Add(2 * wait)
	for i := 0; ; i++ {
		res := c.IQ(e.t, wait, fmt.Sprintf(`<iq type='get' to='%s' id='serving-%d'><ping xmlns='urn:xmpp:ping'/></iq>`, gwDomain, i))
		if res.Type == "result" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the gateway does not answer through the XMPP server: %s", res)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registered checks, through XEP-0077, that c's user is still registered
// under nick.
func registered(t *testing.T, c *xmpptest.Client, nick string) {
	t.Helper()
	res := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='reg-check'><query xmlns='jabber:iq:register'/></iq>`)
	if res.Type != "result" || !strings.Contains(res.Inner, "<registered>") || !strings.Contains(res.Inner, ">"+nick+"<") {
		t.Errorf("registration after the fault: %s", res)
	}
}

// roundTrip proves that a room works both ways for one XMPP user: a line
// from IRC arrives, and a message from XMPP reaches IRC.
func roundTrip(t *testing.T, bob *irctest.Client, c *xmpptest.Client, channel, nick, tag string) {
	t.Helper()
	bob.Send("PRIVMSG " + channel + " :to " + nick + " " + tag)
	c.Expect(t, wait, groupchat(channel, "bob", "to "+nick+" "+tag))
	c.SendRaw(t, `<message to='`+roomJID(channel)+`' type='groupchat' id='rt-`+nick+`-`+tag+`'><body>from `+nick+` `+tag+`</body></message>`)
	bob.Expect(t, wait, irctest.From(nick, irctest.Command("PRIVMSG", channel, "from "+nick+" "+tag)))
}

// TestXMPPServerRestartUnderTraffic restarts Prosody while two XMPP users
// and an IRC user talk in a channel. The component reconnects; the users,
// once back online (one with the same resource, one with another), get the
// transport's presence and their IRC contact's, rejoin the room and talk
// both ways; nothing of their registrations is lost.
func TestXMPPServerRestartUnderTraffic(t *testing.T) {
	e := newEnv(t)
	const channel = "#traffic"
	bob := e.ircUser("bob")
	bob.Join(t, channel)
	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	join(t, alice, channel, "alice")
	alice.SendRaw(t, `<presence to='`+userJID("bob")+`' type='subscribe'/>`)
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), "subscribed"))
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), ""))
	carol := e.client("carol", "laptop")
	e.register(carol, "carol")
	join(t, carol, channel, "carol")
	bob.Expect(t, wait, irctest.From("carol", irctest.Command("JOIN", channel)))

	tr := startTraffic()
	tr.fromIRC(bob, channel)
	tr.fromXMPP(alice, channel, "alice")
	tr.fromXMPP(carol, channel, "carol")
	// Traffic flows both ways before the fault.
	alice.Expect(t, wait, groupchat(channel, "bob", ""))
	carol.Expect(t, wait, groupchat(channel, "bob", ""))
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("PRIVMSG", channel)))
	bob.Expect(t, wait, irctest.From("carol", irctest.Command("PRIVMSG", channel)))

	e.xmpp.Restart(t)
	// The gateway reconnects while bob keeps writing.
	eventually(t, "the gateway reconnects", e.gw.Connected)

	alice = e.client("alice", "phone")
	e.waitServing(alice)
	alice.SendRaw(t, `<presence/>`)
	if p := alice.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "")); p.Text("", "show") != "" {
		t.Errorf("transport presence for alice after the restart: %s", p)
	}
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), ""))
	carol = e.client("carol", "tablet")
	carol.SendRaw(t, `<presence/>`)
	if p := carol.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "")); p.Text("", "show") != "" {
		t.Errorf("transport presence for carol after the restart: %s", p)
	}
	join(t, alice, channel, "alice")
	alice.Expect(t, wait, occupant(channel, "bob", ""))
	join(t, carol, channel, "carol")
	carol.Expect(t, wait, occupant(channel, "bob", ""))
	// bob's traffic reaches the rejoined users.
	alice.Expect(t, wait, groupchat(channel, "bob", ""))
	carol.Expect(t, wait, groupchat(channel, "bob", ""))
	tr.stop()

	roundTrip(t, bob, alice, channel, "alice", "after the restart")
	roundTrip(t, bob, carol, channel, "carol", "after the restart")
	registered(t, alice, "alice")
	registered(t, carol, "carol")
	t.Logf("%d lines of traffic", tr.sent.Load())
}

// TestComponentLinkCutUnderTraffic cuts only the gateway's connection to
// Prosody while the users stay online and talk. Without the user doing
// anything, the gateway reconnects, shows the transport and the user's IRC
// contact available again, delivers what IRC said meanwhile, and the room
// keeps working both ways.
func TestComponentLinkCutUnderTraffic(t *testing.T) {
	e := newEnv(t, envOptions{proxy: true})
	const channel = "#cut"
	bob, alice := e.bobAndAlice(t, channel)
	alice.SendRaw(t, `<presence to='`+userJID("bob")+`' type='subscribe'/>`)
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), "subscribed"))
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), ""))
	// Presences from before the cut prove nothing about the reconnection.
	time.Sleep(300 * time.Millisecond)
	drain(alice, func(s *xmpptest.Stanza) bool {
		return xmpptest.PresenceFrom(gwDomain, "")(s) || xmpptest.PresenceFrom(userJID("bob"), "")(s)
	})

	tr := startTraffic()
	tr.fromIRC(bob, channel)
	alice.Expect(t, wait, groupchat(channel, "bob", ""))

	e.proxy.Cut()
	eventually(t, "the gateway notices the cut", func() bool { return !e.gw.Connected() })
	bob.Send("PRIVMSG " + channel + " :said while the link was down")
	eventually(t, "the gateway reconnects", e.gw.Connected)

	// Re-announced without the user sending anything.
	if p := alice.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "")); p.Text("", "show") != "" {
		t.Errorf("transport presence after the cut: %s", p)
	}
	alice.Expect(t, wait, xmpptest.PresenceFrom(userJID("bob"), ""))
	alice.Expect(t, wait, groupchat(channel, "bob", "said while the link was down"))
	tr.stop()
	roundTrip(t, bob, alice, channel, "alice", "after the cut")
	// The gateway asked the server who is online after reconnecting: the
	// user's resource answered, so it stays in the room past that wait.
	bob.ExpectNone(t, confirmWait+time.Second, irctest.From("alice", func(m irctest.Message) bool {
		return m.Command == "QUIT" || m.Command == "PART"
	}))
	roundTrip(t, bob, alice, channel, "alice", "later")
	registered(t, alice, "alice")
}

// drain takes every stanza that match accepts out of c's buffer.
func drain(c *xmpptest.Client, match func(*xmpptest.Stanza) bool) {
	for {
		got := false
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Expect(quietTB{}, time.Millisecond, match)
			got = true
		}()
		<-done
		if !got {
			return
		}
	}
}

// eventually polls cond until it holds or the wait is over.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestXMPPServerCrash kills Prosody with SIGKILL, so that the gateway hears
// nothing about the users going offline, and starts it again. The user
// comes back with another resource, rejoins and talks; the resource that
// died with the server is forgotten, so that when the user goes offline
// they leave IRC as usual rather than staying there for good.
func TestXMPPServerCrash(t *testing.T) {
	e := newEnv(t)
	const channel = "#crash"
	bob, alice := e.bobAndAlice(t, channel)
	roundTrip(t, bob, alice, channel, "alice", "before the crash")

	if e.xmpp.Kind == testserver.KindEjabberd {
		// ejabberd's Mnesia loses the last seconds of writes to a SIGKILL,
		// here alice's fresh subscription to the transport, after which
		// the server no longer passes her presence on. Give it the time a
		// subscription of a real user has had.
		time.Sleep(5 * time.Second)
	}
	e.xmpp.Kill()
	e.xmpp.Restart(t)
	eventually(t, "the gateway reconnects", e.gw.Connected)
	alice = e.client("alice", "tablet")
	e.waitServing(alice)
	alice.SendRaw(t, `<presence/>`)
	alice.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, ""))
	join(t, alice, channel, "alice")
	roundTrip(t, bob, alice, channel, "alice", "after the crash")
	registered(t, alice, "alice")

	alice.SendRaw(t, `<presence type='unavailable'/>`)
	bob.Expect(t, 3*wait, irctest.From("alice", func(m irctest.Message) bool { return m.Command == "PART" || m.Command == "QUIT" }))
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
