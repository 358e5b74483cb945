package irc_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/irc"
)

// The hot paths of the IRC transport, measured through the real code: a
// Session logged in with Transport.Login, connected by girc to a minimal
// IRC server on loopback that welcomes it, confirms joins and counts what
// it receives. Run in CI with a fixed count (-benchtime 100x): they check
// that the paths work and report allocations; they assert no timing.

// benchServer is the smallest IRC server that lets a session register and
// join channels.
type benchServer struct {
	ln      net.Listener
	conn    chan net.Conn
	privmsg chan string // the text of every PRIVMSG received
}

func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchServer{ln: ln, conn: make(chan net.Conn, 1), privmsg: make(chan string, 4096)}
	b.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *benchServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *benchServer) serve() {
	c, err := s.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	s.conn <- c
	r := bufio.NewReader(c)
	nick := "alice"
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		var out string
		switch cmd {
		case "NICK":
			nick = rest
		case "USER":
			out = ":srv 001 " + nick + " :Welcome\r\n:srv 005 " + nick + " CHANTYPES=# PREFIX=(ov)@+ :are supported\r\n:srv 376 " + nick + " :End of MOTD\r\n"
		case "JOIN":
			ch, _, _ := strings.Cut(rest, " ")
			out = ":" + nick + "!u@h JOIN " + ch + "\r\n:srv 353 " + nick + " = " + ch + " :" + nick + " bob\r\n:srv 366 " + nick + " " + ch + " :End of NAMES\r\n"
		case "PING":
			out = ":srv PONG srv " + rest + "\r\n"
		case "PRIVMSG":
			_, text, _ := strings.Cut(rest, " :")
			s.privmsg <- text
		}
		if out != "" {
			if _, err := c.Write([]byte(out)); err != nil {
				return
			}
		}
	}
}

// benchSink receives the session's events: messages on one channel,
// everything else on another.
type benchSink struct {
	messages chan transports.Message
	other    chan transports.Event
}

func (k *benchSink) Deliver(_ context.Context, ev transports.Event) error {
	if m, ok := ev.(transports.Message); ok && m.Nick == "bob" || ok && m.From == "bob" {
		k.messages <- m
		return nil
	}
	select {
	case k.other <- ev:
	default:
	}
	return nil
}

// benchSession logs alice in to the benchmark server through the real
// transport, joins #bench and returns the session, the server's side of
// the connection and the sink.
func benchSession(b *testing.B) (transports.Session, *benchServer, net.Conn, *benchSink) {
	b.Helper()
	srv := newBenchServer(b)
	off := false
	tr, err := irc.New(irc.Config{
		DefaultNetwork: "bench.test",
		Networks:       map[string]irc.NetworkConfig{"bench.test": {Host: "127.0.0.1", Port: srv.port(), TLS: &off}},
		LinesPerSecond: 1e9, // the pacing is not what is measured
		Burst:          1 << 20,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	sink := &benchSink{messages: make(chan transports.Message, 16), other: make(chan transports.Event, 64)}
	sess, err := tr.Login(context.Background(), transports.LoginRequest{
		User:     "alice@example.test",
		Values:   transports.Values{"nick": "alice"},
		Presence: transports.Presence{Available: true},
		Events:   sink,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sess.Close(ctx)
	})
	if err := sess.(transports.Rooms).JoinRoom(context.Background(), "#bench", "alice", ""); err != nil {
		b.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-sink.other:
			if j, ok := ev.(transports.RoomJoined); ok && j.Room == "#bench" {
				return sess, srv, <-srv.conn, sink
			}
			if l, ok := ev.(transports.RoomLeft); ok {
				b.Fatalf("join refused: %+v", l)
			}
		case <-timeout:
			b.Fatal("no RoomJoined within 10s")
		}
	}
}

// BenchmarkStanzaToLine measures an outgoing message, as the gateway hands
// it to the session, until the IRC server has read every line of it.
func BenchmarkStanzaToLine(b *testing.B) {
	cases := []struct {
		name string
		msg  transports.Message
	}{
		{"chat", transports.Message{To: "bob", Type: transports.Chat, Body: "hello bob, how are things?"}},
		{"groupchat", transports.Message{To: "#bench", Type: transports.Groupchat, Body: "hello everyone in the channel"}},
		{"groupchat-split", transports.Message{To: "#bench", Type: transports.Groupchat, Body: strings.Repeat("a long line of text ", 50) + "\nand a second line"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			sess, srv, _, _ := benchSession(b)
			ctx := context.Background()
			// The first send tells how many lines one message becomes.
			if err := sess.Send(ctx, c.msg); err != nil {
				b.Fatal(err)
			}
			lines := drainLines(b, srv)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := sess.Send(ctx, c.msg); err != nil {
					b.Fatal(err)
				}
				for range lines {
					select {
					case <-srv.privmsg:
					case <-time.After(10 * time.Second):
						b.Fatal("a line never reached the server")
					}
				}
			}
			b.ReportMetric(float64(lines), "lines/msg")
		})
	}
}

// drainLines counts the lines the server receives until it is quiet.
func drainLines(b *testing.B, srv *benchServer) int {
	b.Helper()
	n := 0
	timeout := time.After(10 * time.Second)
	for {
		select {
		case <-srv.privmsg:
			n++
		case <-time.After(200 * time.Millisecond):
			if n == 0 {
				b.Fatal("no line reached the server")
			}
			return n
		case <-timeout:
			b.Fatal("lines kept coming")
		}
	}
}

// BenchmarkLineToEvent measures a PRIVMSG line written by the IRC server
// until the session has delivered the message event to the gateway.
func BenchmarkLineToEvent(b *testing.B) {
	cases := []struct{ name, line string }{
		{"groupchat", ":bob!b@host PRIVMSG #bench :hello from IRC, how is everyone?\r\n"},
		{"chat", ":bob!b@host PRIVMSG alice :hello alice, a private word\r\n"},
		{"action", ":bob!b@host PRIVMSG #bench :\x01ACTION waves\x01\r\n"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			_, _, conn, sink := benchSession(b)
			line := []byte(c.line)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := conn.Write(line); err != nil {
					b.Fatal(err)
				}
				select {
				case m := <-sink.messages:
					if m.Body == "" {
						b.Fatalf("empty message: %+v", m)
					}
				case <-time.After(10 * time.Second):
					b.Fatalf("no event for %q", c.line)
				}
			}
		})
	}
}
