// Package irctest is a raw IRC client for tests: it speaks plain IRC over
// TCP, answers PING itself and lets a test wait for the messages it expects.
package irctest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// Message is one parsed IRC line.
type Message struct {
	// Prefix is the source without its colon, "" when absent.
	Prefix string
	// Nick is Prefix up to the first '!' or '@' (the whole prefix for a server).
	Nick string
	// Command is upper case, such as "PRIVMSG" or "001".
	Command string
	// Params are the parameters, the trailing one without its colon.
	Params []string
	// Raw is the line as received, without CR LF.
	Raw string
}

// Trailing returns the last parameter, or "" when there is none.
func (m Message) Trailing() string {
	if len(m.Params) == 0 {
		return ""
	}
	return m.Params[len(m.Params)-1]
}

// Parse parses an IRC line, skipping message tags.
func Parse(line string) Message {
	m := Message{Raw: line}
	s := strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(s, "@") {
		_, s, _ = strings.Cut(s, " ")
	}
	s = strings.TrimLeft(s, " ")
	if strings.HasPrefix(s, ":") {
		m.Prefix, s, _ = strings.Cut(s[1:], " ")
		m.Nick = m.Prefix
		if i := strings.IndexAny(m.Prefix, "!@"); i >= 0 {
			m.Nick = m.Prefix[:i]
		}
	}
	s = strings.TrimLeft(s, " ")
	m.Command, s, _ = strings.Cut(s, " ")
	m.Command = strings.ToUpper(m.Command)
	for s != "" {
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, ":") {
			m.Params = append(m.Params, s[1:])
			break
		}
		if s == "" {
			break
		}
		var p string
		p, s, _ = strings.Cut(s, " ")
		m.Params = append(m.Params, p)
	}
	return m
}

// Command matches messages with command cmd whose first parameters equal
// params, compared case-sensitively.
func Command(cmd string, params ...string) func(Message) bool {
	cmd = strings.ToUpper(cmd)
	return func(m Message) bool {
		if m.Command != cmd || len(m.Params) < len(params) {
			return false
		}
		for i, p := range params {
			if m.Params[i] != p {
				return false
			}
		}
		return true
	}
}

// From matches messages from nick (compared case-insensitively) that also
// match m.
func From(nick string, m func(Message) bool) func(Message) bool {
	return func(msg Message) bool { return strings.EqualFold(msg.Nick, nick) && m(msg) }
}

const logLines = 40

// Client is a registered IRC connection.
type Client struct {
	conn    net.Conn
	wmu     sync.Mutex
	notify  chan struct{}
	done    chan struct{}
	closeMu sync.Once

	mu    sync.Mutex
	nick  string
	queue []Message
	log   []string
	err   error
}

// Dial connects to addr, registers as nick and waits for 001, failing the
// test after 10 s; the connection is closed when the test ends.
func Dial(t tb.TB, addr, nick string) *Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("irctest: dial %s: %v", addr, err)
	}
	c := &Client{conn: conn, nick: nick, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.Close)
	c.Send("NICK " + nick)
	c.Send("USER " + nick + " 0 * :" + nick)
	m := c.Expect(t, 10*time.Second, func(m Message) bool {
		switch m.Command {
		case "001", "ERROR", "431", "432", "433", "436", "465":
			return true
		}
		return false
	})
	if m.Command != "001" {
		t.Fatalf("irctest: %s: registration refused: %s", nick, m.Raw)
	}
	if len(m.Params) > 0 {
		c.mu.Lock()
		c.nick = m.Params[0]
		c.mu.Unlock()
	}
	return c
}

func (c *Client) read() {
	defer close(c.done)
	r := bufio.NewReader(c.conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			c.wake()
			return
		}
		m := Parse(strings.TrimRight(line, "\r\n"))
		if m.Command == "PING" {
			c.write("PONG :" + m.Trailing())
		}
		c.mu.Lock()
		if m.Command == "NICK" && strings.EqualFold(m.Nick, c.nick) {
			c.nick = m.Trailing()
		}
		c.queue = append(c.queue, m)
		c.addLog("<< " + m.Raw)
		c.mu.Unlock()
		c.wake()
	}
}

func (c *Client) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// addLog keeps the recent lines for failure output; c.mu is held.
func (c *Client) addLog(line string) {
	c.log = append(c.log, line)
	if len(c.log) > 2*logLines {
		c.log = append(c.log[:0], c.log[len(c.log)-logLines:]...)
	}
}

func (c *Client) write(line string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write([]byte(line + "\r\n"))
	return err
}

// Send writes line and CR LF verbatim; a write error shows in the log.
func (c *Client) Send(line string) {
	err := c.write(line)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLog(">> " + line)
	if err != nil {
		c.addLog(fmt.Sprintf("!! write: %v", err))
	}
}

// Expect returns the first message not consumed by an earlier Expect that
// matches, skipping the others; it fails the test with the recent lines
// after timeout or when the connection ends. Call it from the test
// goroutine.
func (c *Client) Expect(t tb.TB, timeout time.Duration, match func(Message) bool) Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			if match(m) {
				return m
			}
			c.mu.Lock()
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			t.Fatalf("irctest: %s: connection ended (%v) before a match; recent lines:\n%s", c.Nick(), err, c.recent())
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("irctest: %s: no match within %v; recent lines:\n%s", c.Nick(), timeout, c.recent())
		}
	}
}

// Receive returns the next message not consumed yet, or an error after
// timeout or when the connection has ended; unlike Expect it never fails
// the test, so that a load test can count what is missing.
func (c *Client) Receive(timeout time.Duration) (Message, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return m, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return Message{}, fmt.Errorf("irctest: %s: connection ended: %w", c.Nick(), err)
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			return Message{}, fmt.Errorf("irctest: %s: nothing received within %v", c.Nick(), timeout)
		}
	}
}

// ExpectNone fails the test if a message that matches is pending or arrives
// within d; it consumes nothing.
func (c *Client) ExpectNone(t tb.TB, d time.Duration, match func(Message) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	seen := 0
	for {
		c.mu.Lock()
		pending := c.queue[seen:]
		c.mu.Unlock()
		for _, m := range pending {
			seen++
			if match(m) {
				t.Fatalf("irctest: %s: unexpected %q; recent lines:\n%s", c.Nick(), m.Raw, c.recent())
			}
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			return
		}
	}
}

// Join joins channel and waits for the end of its names list (366).
func (c *Client) Join(t tb.TB, channel string) {
	t.Helper()
	c.Send("JOIN " + channel)
	m := c.Expect(t, 10*time.Second, func(m Message) bool {
		switch m.Command {
		case "366", "403", "405", "471", "473", "474", "475", "476":
			return len(m.Params) > 1 && strings.EqualFold(m.Params[1], channel)
		}
		return false
	})
	if m.Command != "366" {
		t.Fatalf("irctest: %s: join %s refused: %s", c.Nick(), channel, m.Raw)
	}
}

// Nick returns the client's current nick, as the server last confirmed it.
func (c *Client) Nick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nick
}

// Close closes the connection and waits for the reader; it is idempotent.
func (c *Client) Close() {
	c.closeMu.Do(func() {
		c.conn.Close()
		<-c.done
	})
}

func (c *Client) recent() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := c.log
	if len(lines) > logLines {
		lines = lines[len(lines)-logLines:]
	}
	return strings.Join(lines, "\n")
}
