package irc

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/hostileirc"
	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/transports"
)

const bindWait = 10 * time.Second

func saslNet(s *hostileirc.Server, allowPlain bool) NetworkConfig {
	off := false
	return NetworkConfig{Host: "127.0.0.1", Port: s.Port(), TLS: &off, AllowPlaintextSASL: allowPlain}
}

func login(t *testing.T, tr *Transport, values transports.Values) (transports.Session, fakeSink) {
	t.Helper()
	sink := make(fakeSink, 1000)
	sess, err := tr.Login(context.Background(), transports.LoginRequest{
		User: "alice@example.test", Values: values, Presence: transports.Presence{Available: true}, Events: sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close(context.Background()) })
	return sess, sink
}

func sendTo(t *testing.T, sess transports.Session, to, body string) {
	t.Helper()
	if err := sess.Send(context.Background(), transports.Message{To: to, Type: transports.Chat, Body: body, ID: body}); err != nil {
		t.Fatal(err)
	}
}

// sawSASL reports whether a client asked for SASL or sent a password.
func sawSASL(c *hostileirc.Conn) bool {
	for _, l := range c.Lines() {
		if strings.HasPrefix(l, "AUTHENTICATE") || strings.HasPrefix(l, "CAP REQ") && strings.Contains(l, "sasl") {
			return true
		}
	}
	return false
}

// TestSASLOnlyToItsNetwork: the password registered for network A never
// goes to network B, which offers SASL too; A still gets it.
func TestSASLOnlyToItsNetwork(t *testing.T) {
	a := hostileirc.Start(t, hostileirc.Config{Name: "a.test", SASL: true, User: "alice", Password: "sesame"})
	b := hostileirc.Start(t, hostileirc.Config{Name: "b.test", SASL: true, User: "alice", Password: "sesame"})
	tr := testTransport(t, Config{Networks: map[string]NetworkConfig{"a.example": saslNet(a, true), "b.example": saslNet(b, true)}})
	values, err := tr.Register(context.Background(), transports.RegisterRequest{Values: transports.Values{fieldNick: "alice", fieldPassword: "sesame", fieldSASLNetwork: "a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := login(t, tr, values)

	sendTo(t, sess, "bob@b.example", "hi-b")
	bc := b.Next(t, bindWait)
	bc.Expect(t, bindWait, irctest.Command("PRIVMSG", "bob", "hi-b"))
	if sawSASL(bc) {
		t.Errorf("network B saw SASL:\n%s", strings.Join(bc.Lines(), "\n"))
	}

	sendTo(t, sess, "bob@a.example", "hi-a")
	ac := a.Next(t, bindWait)
	ac.Expect(t, bindWait, irctest.Command("PRIVMSG", "bob", "hi-a"))
	if !sawSASL(ac) {
		t.Errorf("network A, the password's, saw no SASL:\n%s", strings.Join(ac.Lines(), "\n"))
	}
}

// TestSASLNotInClear: without TLS and without allow_plaintext_sasl, the
// password is not sent (no connection is made) and the user is told why.
func TestSASLNotInClear(t *testing.T) {
	a := hostileirc.Start(t, hostileirc.Config{Name: "a.test", SASL: true, User: "alice", Password: "sesame"})
	tr := testTransport(t, Config{Networks: map[string]NetworkConfig{"a.example": saslNet(a, false)}})
	sess, sink := login(t, tr, transports.Values{fieldNick: "alice", fieldPassword: "sesame"})
	sendTo(t, sess, "bob@a.example", "hi")
	told := false
	deadline := time.After(bindWait)
	for {
		select {
		case ev := <-sink:
			switch ev := ev.(type) {
			case transports.Message:
				told = told || strings.Contains(ev.Body, "allow_plaintext_sasl")
			case transports.Presence:
				if ev.Available {
					t.Fatalf("connected to a plain-text network with a SASL password: %+v", ev)
				}
			case transports.SendFailure:
				if transports.KindOf(ev.Err) != transports.NotAuthorized || !strings.Contains(ev.Err.Error(), "TLS") {
					t.Errorf("failure = %v", ev.Err)
				}
				if !told {
					t.Error("the user was not told why")
				}
				if n := a.Accepted(); n != 0 {
					t.Errorf("the server got %d connections", n)
				}
				// What follows fails at once rather than wait for ever.
				sendTo(t, sess, "carol@a.example", "again")
				for {
					select {
					case ev := <-sink:
						if f, ok := ev.(transports.SendFailure); ok && f.ID == "again" {
							return
						}
					case <-time.After(bindWait):
						t.Fatal("a second message to the refused network got no answer")
					}
				}
			}
		case <-deadline:
			t.Fatal("no outcome")
		}
	}
}

// TestSASLNetworkChangeDropsPassword: a password kept from the previous
// registration (the gateway fills an empty secret with it) is not carried
// to another network; entered with the same network, it stays.
func TestSASLNetworkChangeDropsPassword(t *testing.T) {
	on := true
	tr := testTransport(t, Config{Networks: map[string]NetworkConfig{"a.example": {TLS: &on}, "b.example": {TLS: &on}}})
	prev := transports.Values{fieldNick: "alice", fieldPassword: "sesame", fieldSASLNetwork: "a.example"}
	got, err := tr.Register(context.Background(), transports.RegisterRequest{
		Values:   transports.Values{fieldNick: "alice", fieldPassword: "sesame", fieldSASLNetwork: "b.example"},
		Previous: prev,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got[fieldPassword] != "" {
		t.Errorf("the password followed the change of network: %v", got)
	}
	got, err = tr.Register(context.Background(), transports.RegisterRequest{
		Values:   transports.Values{fieldNick: "alice2", fieldPassword: "sesame", fieldSASLNetwork: "a.example"},
		Previous: prev,
	})
	if err != nil || got[fieldPassword] != "sesame" {
		t.Errorf("same network: %v, %v", got, err)
	}
	_, err = tr.Register(context.Background(), transports.RegisterRequest{Values: transports.Values{fieldNick: "alice", fieldPassword: "sesame"}})
	if transports.KindOf(err) != transports.BadRequest {
		t.Errorf("a password for no network among two: %v", err)
	}
}

// TestAnyNetworkRefusesLoopback: a network the user names under
// any_network that resolves to loopback is refused before any connection,
// with a text that tells nothing about the port; listed in
// allow_addresses, it is dialled.
func TestAnyNetworkRefusesLoopback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:6697") // where any_network dials
	if err != nil {
		t.Fatalf("listen on 127.0.0.1:6697: %v", err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for _, allowed := range []bool{false, true} {
		cfg := Config{AnyNetwork: true}
		if allowed {
			cfg.AllowAddresses = []string{"127.0.0.1"}
		}
		tr := testTransport(t, cfg)
		sess, sink := login(t, tr, transports.Values{fieldNick: "alice"})
		sendTo(t, sess, "bob@127.0.0.1", "hi")
		if allowed {
			select {
			case c := <-accepted:
				c.Close() // no TLS: the user must not learn that either
			case <-time.After(bindWait):
				t.Fatal("an allowed address was not dialled")
			}
		}
		var failure error
		deadline := time.After(bindWait)
		for failure == nil {
			select {
			case ev := <-sink:
				if f, ok := ev.(transports.SendFailure); ok {
					failure = f.Err
				}
			case <-deadline:
				t.Fatal("no outcome")
			}
		}
		want := "not allowed"
		if allowed {
			want = "could not be reached, or did not answer as expected"
		}
		text := strings.ToLower(failure.Error())
		if !strings.Contains(text, want) || strings.Contains(text, "6697") || strings.Contains(text, "refused") || strings.Contains(text, "tls") || strings.Contains(text, "eof") {
			t.Errorf("failure text: %v", failure)
		}
		if allowed {
			continue
		}
		select {
		case c := <-accepted:
			c.Close()
			t.Error("the listener saw a connection")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestSASLUnboundPasswordGoesNowhere: a password stored before the binding,
// on a gateway with two networks and no default, goes to neither, and the
// user is told.
func TestSASLUnboundPasswordGoesNowhere(t *testing.T) {
	a := hostileirc.Start(t, hostileirc.Config{Name: "a.test", SASL: true, User: "alice", Password: "sesame"})
	b := hostileirc.Start(t, hostileirc.Config{Name: "b.test", SASL: true, User: "alice", Password: "sesame"})
	tr := testTransport(t, Config{Networks: map[string]NetworkConfig{"a.example": saslNet(a, true), "b.example": saslNet(b, true)}})
	sess, sink := login(t, tr, transports.Values{fieldNick: "alice", fieldPassword: "sesame"})
	sendTo(t, sess, "bob@a.example", "hi")
	ac := a.Next(t, bindWait)
	ac.Expect(t, bindWait, irctest.Command("PRIVMSG", "bob", "hi"))
	if sawSASL(ac) {
		t.Errorf("an unbound password was sent:\n%s", strings.Join(ac.Lines(), "\n"))
	}
	for {
		select {
		case ev := <-sink:
			if m, ok := ev.(transports.Message); ok && strings.Contains(m.Body, "network of the SASL password") {
				return
			}
		case <-time.After(bindWait):
			t.Fatal("the user was not told")
		}
	}
}
