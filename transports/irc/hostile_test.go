package irc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/hostileirc"
	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// badJID is the JID of a nick on the scripted network.
func badJID(nick string) string { return nick + "%" + badNetwork + "@" + gwDomain }

func badRoom(channel string) string { return channel + "%" + badNetwork + "@" + gwDomain }

// hostile drives the scripted network for a user of the real gateway.
type hostile struct {
	t     *testing.T // the whole test's, which owns the connections
	e     *env
	alice *xmpptest.Client
	conn  *hostileirc.Conn
}

// ordinary proves the session still works: a private message each way.
func (h *hostile) ordinary(t *testing.T, tag string) {
	t.Helper()
	_ = h.conn.Send(":bob!b@h PRIVMSG alice :ping " + tag)
	h.alice.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "message" && strings.EqualFold(s.From, badJID("bob")) && bodyOf(s) == "ping "+tag
	})
	h.alice.SendRaw(t, `<message to='`+badJID("bob")+`' type='chat' id='o-`+tag+`'><body>pong `+tag+`</body></message>`)
	h.conn.Expect(t, wait, irctest.Command("PRIVMSG", "bob", "pong "+tag))
}

// say sends a chat message from alice to nick on the scripted network.
func (h *hostile) say(t *testing.T, nick, body string) {
	t.Helper()
	h.alice.SendRaw(t, `<message to='`+badJID(nick)+`' type='chat' id='say-`+nick+`'><body>`+body+`</body></message>`)
}

// none fails if a stanza already received matches, without waiting.
func (h *hostile) none(t *testing.T, what string, match func(*xmpptest.Stanza) bool) {
	t.Helper()
	h.alice.ExpectNone(t, 50*time.Millisecond, func(s *xmpptest.Stanza) bool {
		if match(s) {
			t.Errorf("%s: %s", what, gwtestShort(s.String()))
			return true
		}
		return false
	})
}

// matching returns the stanzas received so far that match, leaving them
// in the client's buffer.
func (h *hostile) matching(match func(*xmpptest.Stanza) bool) map[*xmpptest.Stanza]bool {
	seen := map[*xmpptest.Stanza]bool{}
	h.alice.ExpectNone(quietTB{}, 200*time.Millisecond, func(s *xmpptest.Stanza) bool {
		if match(s) {
			seen[s] = true
		}
		return false
	})
	return seen
}

// count counts the stanzas received so far that match.
func (h *hostile) count(match func(*xmpptest.Stanza) bool) int { return len(h.matching(match)) }

func gwtestShort(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// noticeFrom matches a message from the network itself containing text.
func noticeFrom(text string) func(*xmpptest.Stanza) bool {
	return func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "message" && strings.HasPrefix(strings.ToLower(s.From), badNetwork) && strings.Contains(bodyOf(s), text)
	}
}

// words is a body of n short words.
func words(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "word%04d ", i)
	}
	return b.String()
}

// privmsgBytes counts the PRIVMSG lines received so far for nick, and
// their bytes.
func privmsgBytes(c *hostileirc.Conn, nick string) (lines, bytes int) {
	return c.Count(irctest.Command("PRIVMSG", nick))
}

// TestHostileServer feeds a scripted IRC network hostile input, one kind
// after the other, and checks after each that the user's session still
// carries an ordinary message both ways through the real gateway and XMPP
// server. The server starts with NICKLEN=30 USERLEN=18 HOSTLEN=441, which
// leaves girc 17 bytes per event.
func TestHostileServer(t *testing.T) {
	e := newEnv(t, envOptions{hostile: &hostileirc.Config{
		ISupport: []string{"CHANTYPES=#", "PREFIX=(ov)@+", "NICKLEN=30", "USERLEN=18", "HOSTLEN=441"},
	}})
	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	h := &hostile{t: t, e: e, alice: alice}
	h.say(t, "bob", "hello")
	h.conn = e.bad.Next(t, wait)
	h.conn.Expect(t, wait, irctest.Command("PRIVMSG", "bob", "hello"))
	h.ordinary(t, "start")

	// A private message after the announcement: it must end, as a
	// bounded number of lines of bounded size.
	t.Run("NICKLEN", func(t *testing.T) {
		h.say(t, "bobbie", words(300))
		h.ordinary(t, "nicklen")
		lines, bytes := privmsgBytes(h.conn, "bobbie")
		if lines == 0 || lines > 40 || bytes > 40*512 {
			t.Errorf("a 2,700-byte message became %d lines, %d bytes", lines, bytes)
		}
	})

	// A 1 MB line is dropped, and the user told; nothing of it is
	// delivered.
	t.Run("long line", func(t *testing.T) {
		_ = h.conn.Write([]byte(":bob!b@h PRIVMSG alice :" + strings.Repeat("x", 1<<20) + "\r\n"))
		h.ordinary(t, "long")
		h.none(t, "part of the 1 MB line delivered", func(s *xmpptest.Stanza) bool { return strings.Contains(bodyOf(s), "xxxxxxxxxx") })
		alice.Expect(t, wait, noticeFrom("too long"))
	})

	// Bytes without an end of line: the connection is dropped once the
	// line passes the bound, and the session connects again when needed.
	t.Run("endless line", func(t *testing.T) {
		chunk := []byte(strings.Repeat("y", 64<<10))
		ended := strings.Count(e.logs.String(), "irc: connection ended")
		old := h.conn
		_ = old.Write([]byte(":bob!b@h PRIVMSG alice :"))
		for sent := 0; sent < 16<<20; sent += len(chunk) {
			if old.Write(chunk) != nil {
				break
			}
		}
		select {
		case <-old.Done():
		case <-time.After(wait):
			t.Fatal("the connection still reads an endless line after 16 MiB")
		}
		// The line that needs the network again is sent once the session
		// has seen the connection end: a line written in the instant a
		// connection dies is lost on IRC, which confirms nothing without
		// echo-message (see the README's IRC section).
		deadline := time.Now().Add(wait)
		for strings.Count(e.logs.String(), "irc: connection ended") == ended {
			if time.Now().After(deadline) {
				t.Fatal("the session never saw the connection end")
			}
			time.Sleep(10 * time.Millisecond)
		}
		h.say(t, "bob", "again")
		h.conn = e.bad.Next(h.t, wait)
		h.conn.Expect(t, wait, irctest.Command("PRIVMSG", "bob", "again"))
		h.ordinary(t, "endless")
	})

	// Nicks that cannot be addresses: nothing from them reaches the user.
	t.Run("nicks", func(t *testing.T) {
		for _, src := range []string{
			"a@b!u@h", "bob%irc.test!u@h", "x!y!u@h", "bo\x01b!u@h", "bo\x7fb!u@h", "!u@h",
			strings.Repeat("n", 10<<10) + "!u@h", "#chan!u@h", "bob,carol!u@h",
		} {
			_ = h.conn.Send(":" + src + " PRIVMSG alice :spoof")
		}
		_ = h.conn.Send(":bob!b@h NICK :ev@il", ":bob!b@h NICK :sp ace", ":ev@il!b@h PRIVMSG alice :spoof")
		h.ordinary(t, "nicks")
		h.none(t, "a message from an invalid nick", func(s *xmpptest.Stanza) bool { return bodyOf(s) == "spoof" })
		alice.Expect(t, wait, noticeFrom("nickname"))
	})

	// Channel names and NAMES entries that cannot be addresses.
	t.Run("channels", func(t *testing.T) {
		alice.SendRaw(t, `<presence to='`+badRoom("#ok")+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		h.conn.Expect(t, wait, irctest.Command("JOIN", "#ok"))
		_ = h.conn.Send(":alice!u@h JOIN #ok",
			":hostile.test 353 alice = #ok :alice @bob +a@b c%d e,f g\x02h %%@x",
			":hostile.test 366 alice #ok :End of /NAMES list.",
			":alice!u@h JOIN #a,#b", ":alice!u@h JOIN #ctl\x02x", ":alice!u@h JOIN :#x y",
			":bob!b@h JOIN #ok,#evil", ":bob!b@h PRIVMSG #a,#b :spoof", ":bob!b@h PRIVMSG #ok,#evil :spoof")
		alice.Expect(t, wait, func(s *xmpptest.Stanza) bool {
			return s.XMLName.Local == "presence" && strings.EqualFold(s.From, badRoom("#ok")+"/alice")
		})
		h.ordinary(t, "channels")
		h.none(t, "a stanza from another room", func(s *xmpptest.Stanza) bool {
			from := strings.ToLower(s.From)
			return strings.Contains(from, "%"+badNetwork) && strings.HasPrefix(from, "#") && from != badRoom("#ok") && !strings.HasPrefix(from, badRoom("#ok")+"/")
		})
		h.none(t, "an occupant with an invalid nick", func(s *xmpptest.Stanza) bool {
			if !strings.HasPrefix(strings.ToLower(s.From), badRoom("#ok")+"/") {
				return false
			}
			nick := s.From[len(badRoom("#ok"))+1:]
			return nick != "alice" && nick != "bob"
		})
		h.none(t, "a message to a listed channel", func(s *xmpptest.Stanza) bool { return bodyOf(s) == "spoof" })
	})

	// Numbers no server should announce, and channel types and prefixes
	// that would turn nicks into channels.
	t.Run("ISUPPORT", func(t *testing.T) {
		_ = h.conn.Send(":hostile.test 005 alice NICKLEN=-5 USERLEN=9223372036854775808 HOSTLEN=abc LINELEN=99999999999999999 MAXNICKLEN=2147483648 :are supported by this server",
			":hostile.test 005 alice CHANTYPES=abcdefghijklmnopqrstuvwxyz PREFIX=(abcdefghijklmnopqrstuvwxyz)abcdefghijklmnopqrstuvwxyz CHANMODES=,,, :are supported by this server")
		before, _ := privmsgBytes(h.conn, "robert")
		h.say(t, "robert", words(300))
		h.ordinary(t, "isupport")
		lines, bytes := privmsgBytes(h.conn, "robert")
		if lines-before == 0 || lines-before > 40 || bytes > 40*512 {
			t.Errorf("a 2,700-byte message became %d lines, %d bytes", lines-before, bytes)
		}
	})

	// CTCP requests: the answers go through the paced queue, at most a
	// burst of ctcpBurst and then one each ctcpEvery.
	t.Run("CTCP flood", func(t *testing.T) {
		const ctcpBurst, ctcpEvery = 3, 2 * time.Second
		before, _ := h.conn.Count(irctest.Command("NOTICE", "bob"))
		start := time.Now()
		for i := 0; i < 200; i++ {
			_ = h.conn.Send(":bob!b@h PRIVMSG alice :\x01VERSION\x01", ":bob!b@h PRIVMSG alice :\x01PING 123\x01")
		}
		h.ordinary(t, "ctcp")
		got, _ := h.conn.Count(irctest.Command("NOTICE", "bob"))
		got -= before
		budget := ctcpBurst + int(time.Since(start)/ctcpEvery) + 1
		if got == 0 || got > budget {
			t.Errorf("400 CTCP requests got %d answers within %v; the pace allows %d", got, time.Since(start).Round(time.Millisecond), budget)
		}
	})

	// 100,000 NAMES entries: the member list is bounded and the user told.
	t.Run("NAMES flood", func(t *testing.T) {
		alice.SendRaw(t, `<presence to='`+badRoom("#big")+`/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		h.conn.Expect(t, wait, irctest.Command("JOIN", "#big"))
		var b strings.Builder
		b.WriteString(":alice!u@h JOIN #big\r\n")
		for i := 0; i < 100000; i += 40 {
			b.WriteString(":hostile.test 353 alice = #big :")
			for j := i; j < i+40; j++ {
				fmt.Fprintf(&b, "m%06d ", j)
			}
			b.WriteString("\r\n")
		}
		b.WriteString(":hostile.test 366 alice #big :End of /NAMES list.\r\n")
		_ = h.conn.Write([]byte(b.String()))
		alice.Expect(t, 3*wait, func(s *xmpptest.Stanza) bool {
			return s.XMLName.Local == "presence" && strings.EqualFold(s.From, badRoom("#big")+"/alice")
		})
		n := h.count(func(s *xmpptest.Stanza) bool {
			return s.XMLName.Local == "presence" && strings.HasPrefix(strings.ToLower(s.From), badRoom("#big")+"/m")
		})
		if n == 0 || n > 5000 {
			t.Errorf("100,000 NAMES entries gave %d occupants; want at most 5000", n)
		}
		alice.Expect(t, wait, func(s *xmpptest.Stanza) bool {
			return s.XMLName.Local == "message" && strings.EqualFold(s.From, badRoom("#big")) && strings.Contains(bodyOf(s), "members")
		})
		h.ordinary(t, "names")
	})

	// Joins to channels the user never asked for: no room appears, and
	// the PARTs answering them are bounded.
	t.Run("forced joins", func(t *testing.T) {
		before, _ := h.conn.Count(irctest.Command("PART"))
		var b strings.Builder
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(&b, ":alice!u@h JOIN #forced%d\r\n", i)
		}
		_ = h.conn.Write([]byte(b.String()))
		h.ordinary(t, "forced")
		if n, _ := h.conn.Count(irctest.Command("PART")); n-before > 20 {
			t.Errorf("1000 forced joins were answered with %d PARTs; want at most 20", n-before)
		}
		h.none(t, "a forced room", func(s *xmpptest.Stanza) bool { return strings.HasPrefix(s.From, "#forced") })
	})

	// Repeated welcomes: the connection is set up once.
	t.Run("welcome flood", func(t *testing.T) {
		network := func(s *xmpptest.Stanza) bool {
			return s.XMLName.Local == "presence" && strings.HasPrefix(strings.ToLower(s.From), badNetwork+"@")
		}
		before := h.matching(network) // those of the earlier connections
		for i := 0; i < 200; i++ {
			_ = h.conn.Send(":hostile.test 001 alice :Welcome again")
		}
		h.ordinary(t, "welcome")
		if n := h.count(func(s *xmpptest.Stanza) bool { return network(s) && !before[s] }); n > 0 {
			t.Errorf("200 repeated welcomes gave the user %d presences of the network", n)
		}
	})

	// MONITOR answers for nicks the user does not follow.
	t.Run("MONITOR flood", func(t *testing.T) {
		var nicks []string
		for i := 0; i < 300; i++ {
			nicks = append(nicks, fmt.Sprintf("w%d!u@h", i))
		}
		_ = h.conn.Send(":hostile.test 730 alice :"+strings.Join(nicks, ","), ":hostile.test 303 alice :w1 w2 w3")
		h.ordinary(t, "monitor")
		h.none(t, "presence of a nick nobody watches", func(s *xmpptest.Stanza) bool {
			return s.XMLName.Local == "presence" && strings.HasPrefix(s.From, "w")
		})
	})
}
