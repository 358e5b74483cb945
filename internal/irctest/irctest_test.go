package irctest_test

import (
	"bufio"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/testserver"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line                  string
		prefix, nick, command string
		params                []string
	}{
		{"PING :irc.test", "", "", "PING", []string{"irc.test"}},
		{":irc.test 001 alice :Welcome to IRC", "irc.test", "irc.test", "001", []string{"alice", "Welcome to IRC"}},
		{"@time=x;a=b :bob!~b@host privmsg #a :hi there", "bob!~b@host", "bob", "PRIVMSG", []string{"#a", "hi there"}},
		{":op!o@h MODE #a +o  bob", "op!o@h", "op", "MODE", []string{"#a", "+o", "bob"}},
		{":x KICK #a bob :", "x", "x", "KICK", []string{"#a", "bob", ""}},
	} {
		m := irctest.Parse(tc.line)
		if m.Prefix != tc.prefix || m.Nick != tc.nick || m.Command != tc.command || !reflect.DeepEqual(m.Params, tc.params) {
			t.Errorf("Parse(%q) = %+v", tc.line, m)
		}
	}
	if got := irctest.Parse("QUIT").Trailing(); got != "" {
		t.Errorf("Trailing of QUIT = %q", got)
	}
}

func TestClients(t *testing.T) {
	srv := testserver.StartNgircd(t, testserver.NgircdConfig{Channels: []string{"#lobby"}})
	const wait = 5 * time.Second
	alice := irctest.Dial(t, srv.Addr(), "alice_with_a_long_nickname")
	bob := irctest.Dial(t, srv.Addr(), "bob")
	if alice.Nick() != "alice_with_a_long_nickname" {
		t.Fatalf("nick = %q", alice.Nick())
	}
	alice.Join(t, "#a")
	bob.Join(t, "#a")
	alice.Expect(t, wait, irctest.From("bob", irctest.Command("JOIN", "#a")))

	alice.Send("PRIVMSG #a :hi bob")
	m := bob.Expect(t, wait, irctest.From(alice.Nick(), irctest.Command("PRIVMSG", "#a")))
	if m.Trailing() != "hi bob" {
		t.Fatalf("got %q", m.Raw)
	}
	alice.ExpectNone(t, 200*time.Millisecond, irctest.Command("PRIVMSG"))

	alice.Send("MODE #a +o bob")
	bob.Expect(t, wait, irctest.Command("MODE", "#a", "+o", "bob"))
	bob.Send("KICK #a " + alice.Nick() + " :bye")
	alice.Expect(t, wait, irctest.From("bob", irctest.Command("KICK", "#a", alice.Nick())))

	bob.Join(t, "#lobby")
	srv.Kill()
	srv.Restart(t)
	carol := irctest.Dial(t, srv.Addr(), "carol")
	carol.Join(t, "#lobby")
	carol.Send("NAMES #lobby")
	names := carol.Expect(t, wait, irctest.Command("353"))
	if names.Trailing() != "carol" {
		t.Fatalf("after restart, #lobby names = %q", names.Trailing())
	}
}

// TestPingPong runs against a fake server that pings right after 001.
func TestPingPong(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pong := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		r.ReadString('\n')
		r.ReadString('\n')
		fmt.Fprint(conn, ":fake 001 dave :hi\r\nPING :tok\r\n")
		line, _ := r.ReadString('\n')
		pong <- line
	}()
	irctest.Dial(t, ln.Addr().String(), "dave")
	select {
	case line := <-pong:
		if line != "PONG :tok\r\n" {
			t.Fatalf("got %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no PONG")
	}
}
