package irc

import (
	"bufio"
	"context"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/transports"
)

// No IRC server in Debian does SASL without a services daemon, so SASL is
// tested against this scripted server: it speaks CAP and AUTHENTICATE as
// IRCv3 servers do and accepts one account.

type fakeSink chan transports.Event

func (f fakeSink) Deliver(ctx context.Context, ev transports.Event) error {
	select {
	case f <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// saslServer accepts one connection and records what it saw.
func saslServer(t *testing.T, user, pass string) (addr string, seen chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	seen = make(chan string, 100)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		w := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
		nick := "*"
		r := bufio.NewScanner(c)
		for r.Scan() {
			line := r.Text()
			seen <- line
			f := strings.Fields(line)
			switch {
			case len(f) == 0:
			case f[0] == "CAP" && len(f) > 1 && f[1] == "LS":
				w(":fake CAP * LS :sasl")
			case f[0] == "CAP" && len(f) > 1 && f[1] == "REQ":
				w(":fake CAP * ACK :sasl")
			case f[0] == "AUTHENTICATE" && f[1] == "PLAIN":
				w("AUTHENTICATE +")
			case f[0] == "AUTHENTICATE":
				raw, _ := base64.StdEncoding.DecodeString(f[1])
				if string(raw) == "\x00"+user+"\x00"+pass || string(raw) == user+"\x00"+user+"\x00"+pass {
					w(":fake 900 " + nick + " " + nick + "!u@h " + user + " :You are now logged in")
					w(":fake 903 " + nick + " :SASL authentication successful")
				} else {
					w(":fake 904 " + nick + " :SASL authentication failed")
				}
			case f[0] == "NICK":
				nick = f[1]
			case f[0] == "CAP" && len(f) > 1 && f[1] == "END":
				w(":fake 001 " + nick + " :Welcome")
			case f[0] == "QUIT":
				return
			}
		}
	}()
	return l.Addr().String(), seen
}

func TestSASL(t *testing.T) {
	for _, c := range []struct {
		name, pass string
		ok         bool
	}{{"good password", "sesame", true}, {"wrong password", "wrong", false}} {
		t.Run(c.name, func(t *testing.T) {
			addr, seen := saslServer(t, "alice", "sesame")
			host, port, _ := net.SplitHostPort(addr)
			off := false
			var p int
			for _, ch := range port {
				p = p*10 + int(ch-'0')
			}
			tr := testTransport(t, Config{Networks: map[string]NetworkConfig{"fake.example": {Host: host, Port: p, TLS: &off, AllowPlaintextSASL: true}}})
			sink := make(fakeSink, 100)
			sess, err := tr.Login(context.Background(), transports.LoginRequest{
				User:     "alice@example.test",
				Values:   transports.Values{fieldNick: "alice", fieldPassword: c.pass},
				Presence: transports.Presence{Available: true},
				Events:   sink,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close(context.Background())
			if err := sess.Send(context.Background(), transports.Message{To: "bob@fake.example", Type: transports.Chat, Body: "hi", ID: "m1"}); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(10 * time.Second)
			for {
				select {
				case ev := <-sink:
					switch ev := ev.(type) {
					case transports.Presence:
						if ev.From == "fake.example" && ev.Available {
							if !c.ok {
								t.Fatal("connected although SASL failed")
							}
							waitLine(t, seen, "PRIVMSG bob")
							return
						}
					case transports.SendFailure:
						if c.ok {
							t.Fatalf("message failed: %v", ev.Err)
						}
						if ev.ID != "m1" || transports.KindOf(ev.Err) != transports.NotAuthorized {
							t.Errorf("failure = %+v", ev)
						}
						return
					}
				case <-deadline:
					t.Fatal("no outcome within 10s")
				}
			}
		})
	}
}

func waitLine(t *testing.T, seen chan string, prefix string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l := <-seen:
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("the server never saw %q", prefix)
		}
	}
}
