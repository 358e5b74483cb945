package irc

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lrstanley/girc"

	"passerelle.dev/passerelle/transports"
)

type discardSink struct{ n int }

func (d *discardSink) Deliver(context.Context, transports.Event) error { d.n++; return nil }

// FuzzHandleLine feeds arbitrary server lines to a registered connection
// with a joined channel: nothing may panic, whatever the server sends.
func FuzzHandleLine(f *testing.F) {
	for _, l := range []string{
		":irc.test 005 me CHANTYPES=#& PREFIX=(qaohv)~&@%+ CHANMODES=beI,k,l,imnt MONITOR=100 :are supported",
		":bob!b@h JOIN #c",
		":irc.test 353 me = #c :@bob +carol ~dave me",
		":irc.test 366 me #c :End",
		":bob!b@h MODE #c +ov-v+b carol carol dave x!*@*",
		":bob!b@h MODE #c +klm key 10",
		":bob!b@h KICK #c carol :bye",
		":bob!b@h PRIVMSG #c :\x01ACTION waves\x01",
		":bob!b@h PRIVMSG me :hi",
		":irc.test NOTICE me :server notice",
		":bob!b@h NICK robert",
		":bob!b@h QUIT :gone",
		":irc.test 303 me :bob carol",
		":irc.test 730 me :bob!b@h,carol",
		":irc.test 433 * me :in use",
		":irc.test 474 me #x :banned",
		":irc.test 482 me #c :not op",
		":irc.test 401 me nobody :no such nick",
		":bob!b@h TOPIC #c :new topic",
		":me!m@h PART #c :bye",
		"ERROR :closing",
		":x MODE",
		":",
		// Hostile lines (TestHostileServer).
		":hostile.test 005 me NICKLEN=30 USERLEN=18 HOSTLEN=441 :are supported by this server",
		":hostile.test 005 me NICKLEN=-5 USERLEN=9223372036854775808 HOSTLEN=abc LINELEN=99999999999999999 :are supported",
		":hostile.test 005 me CHANTYPES=abcdefghijklmnopqrstuvwxyz PREFIX=(abc)abc CHANMODES=,,, :are supported",
		":a@b!u@h PRIVMSG me :spoof",
		":bob%irc.test!u@h PRIVMSG me :spoof",
		":x!y!u@h PRIVMSG me :spoof",
		":bo\x01b!u@h PRIVMSG me :spoof",
		":!u@h PRIVMSG me :spoof",
		":bob!b@h NICK :ev@il",
		":bob!b@h KICK #c :a%b",
		":irc.test 353 me = #c :alice @bob +a@b c%d e,f g\x02h %%@x",
		":me!u@h JOIN #a,#b",
		":me!u@h JOIN #ctl\x02x",
		":bob!b@h PRIVMSG #a,#b :spoof",
		":bob!b@h PRIVMSG me :\x01VERSION\x01",
		":bob!b@h PRIVMSG me :\x01PING 123\x01",
		":bob!b@h PRIVMSG me :\x01CLIENTINFO",
		":irc.test 730 me :w0!u@h,w1!u@h,,!,@",
		":irc.test 333 me #c a%b!u@h 0",
		":irc.test 001 a@b :Welcome",
	} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		tr, err := New(Config{AnyNetwork: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		sink := &discardSink{}
		s := newSession(tr, transports.LoginRequest{Values: transports.Values{fieldNick: "me"}, Events: sink}, nil, tr.log)
		defer s.cancel()
		n := s.net("irc.test")
		n.state, n.nick = stateRegistered, "me"
		n.resetGuards()
		n.channels["#c"] = &channel{name: "#c", joined: true, members: map[string]*member{"me": {nick: "me"}, "bob": {nick: "bob", prefixes: "@"}}}
		n.requests["1"] = &request{id: "1", kind: reqKick, channel: "#c", target: "carol"}
		e := girc.ParseEvent(line)
		if e == nil {
			return
		}
		n.handle(*e)
	})
}

// pipeConn is a net.Conn that reads from a fixed input.
type pipeConn struct {
	net.Conn
	r io.Reader
}

func (p pipeConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// FuzzWireConn feeds arbitrary bytes from a server through the wire layer:
// nothing may panic, girc gets only whole lines within the bound and of
// the kinds it needs, and the session gets parsed events.
func FuzzWireConn(f *testing.F) {
	for _, seed := range []string{
		":irc.test 001 me :Welcome\r\nPING :x\r\n",
		":irc.test CAP * LS :sasl\r\nAUTHENTICATE +\r\n:irc.test 903 me :ok\r\n",
		":bob!b@h PRIVMSG me :" + strings.Repeat("x", maxLineBytes+10) + "\r\n:bob!b@h PRIVMSG me :after\r\n",
		strings.Repeat("y", 3*maxLineBytes),
		"\n\n\r\n \r\n:irc.test 433 * me :in use\n",
		"@" + strings.Repeat("a=b;", 3000) + " :bob!b@h PRIVMSG me :tags\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		events := 0
		w := newWireConn(pipeConn{r: bytes.NewReader(in)}, "irc.test", 1, new(atomic.Bool), func(ev any) bool {
			events++
			return true
		})
		r := bufio.NewReader(w)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if line != "" {
					t.Fatalf("girc got a partial line %q", line)
				}
				return
			}
			if len(line) > maxLineBytes+2 {
				t.Fatalf("girc got a %d-byte line", len(line))
			}
			e := girc.ParseEvent(line)
			if e == nil {
				t.Fatalf("girc got an unparsable line %q", line)
			}
			if _, ok := gircLimits[e.Command]; !ok && e.Command != girc.PING && e.Command != girc.PONG {
				t.Fatalf("girc got a %s line", e.Command)
			}
		}
	})
}
