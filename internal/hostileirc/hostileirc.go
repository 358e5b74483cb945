// Package hostileirc is a scripted IRC server for tests: plain TCP on
// loopback, it registers clients the way a real server does (CAP, SASL
// PLAIN, NICK/USER, 001 and 005) and then lets the test write any bytes it
// likes to a connection, and see every line the client sent.
package hostileirc

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/tb"
)

// Config sets what the server announces.
type Config struct {
	// Name is the server's name, the source of its numerics.
	Name string
	// ISupport are the 005 tokens sent after the welcome (such as
	// "NICKLEN=30"); CHANTYPES=# PREFIX=(ov)@+ when empty.
	ISupport []string
	// SASL offers the sasl capability and accepts this account.
	SASL     bool
	User     string
	Password string
}

// maxLine bounds what the server reads of one client line.
const maxLine = 64 << 10

// Server is a listening scripted server.
type Server struct {
	cfg      Config
	l        net.Listener
	accepted atomic.Int64
	conns    chan *Conn
}

// Start listens on loopback until the test ends.
func Start(t tb.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "hostile.test"
	}
	if len(cfg.ISupport) == 0 {
		cfg.ISupport = []string{"CHANTYPES=#", "PREFIX=(ov)@+"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hostileirc: listen: %v", err)
	}
	s := &Server{cfg: cfg, l: l, conns: make(chan *Conn, 16)}
	t.Cleanup(func() { l.Close() })
	go s.accept()
	return s
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Port is the listening port.
func (s *Server) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// Accepted counts the connections accepted so far.
func (s *Server) Accepted() int { return int(s.accepted.Load()) }

func (s *Server) accept() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		conn := &Conn{s: s, c: c, notify: make(chan struct{}, 1), welcomed: make(chan struct{}), done: make(chan struct{})}
		go conn.read()
		select {
		case s.conns <- conn:
		default:
			c.Close() // the test does not keep up: refuse
		}
	}
}

// Next waits for the next connection to be registered (001 sent).
func (s *Server) Next(t tb.TB, timeout time.Duration) *Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.Close() })
		select {
		case <-c.welcomed:
			return c
		case <-c.done:
			t.Fatalf("hostileirc: the client left before registering; it sent:\n%s", strings.Join(c.Lines(), "\n"))
		case <-time.After(timeout):
			t.Fatalf("hostileirc: no registration within %v; the client sent:\n%s", timeout, strings.Join(c.Lines(), "\n"))
		}
	case <-time.After(timeout):
		t.Fatalf("hostileirc: no connection within %v", timeout)
	}
	return nil
}

// Conn is one client connection.
type Conn struct {
	s        *Server
	c        net.Conn
	wmu      sync.Mutex
	notify   chan struct{}
	welcomed chan struct{}
	done     chan struct{}

	mu     sync.Mutex
	nick   string
	lines  []string
	cursor int
	err    error
}

// Nick is the nick the client registered with (or changed to).
func (c *Conn) Nick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nick
}

// Close ends the connection.
func (c *Conn) Close() { c.c.Close() }

// Done is closed once the client's side has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Write sends raw bytes, nothing added.
func (c *Conn) Write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	_, err := c.c.Write(b)
	return err
}

// Send writes each line followed by CR LF.
func (c *Conn) Send(lines ...string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return c.Write([]byte(b.String()))
}

func (c *Conn) read() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.c, maxLine)
	capping := false
	registered := false
	var user bool
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			c.wake()
			return
		}
		l := strings.TrimRight(string(line), "\r\n")
		c.mu.Lock()
		c.lines = append(c.lines, l)
		c.mu.Unlock()
		c.wake()
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		name := c.s.cfg.Name
		switch strings.ToUpper(f[0]) {
		case "CAP":
			switch {
			case len(f) > 1 && f[1] == "LS":
				capping = true
				caps := ""
				if c.s.cfg.SASL {
					caps = "sasl"
				}
				_ = c.Send(":" + name + " CAP * LS :" + caps)
			case len(f) > 2 && f[1] == "REQ":
				_ = c.Send(":" + name + " CAP * ACK " + strings.Join(f[2:], " "))
			case len(f) > 1 && f[1] == "END":
				capping = false
			}
		case "AUTHENTICATE":
			if len(f) < 2 {
				break
			}
			if f[1] == "PLAIN" {
				_ = c.Send("AUTHENTICATE +")
				break
			}
			raw, _ := base64.StdEncoding.DecodeString(f[1])
			nick := c.Nick()
			u, p := c.s.cfg.User, c.s.cfg.Password
			if string(raw) == "\x00"+u+"\x00"+p || string(raw) == u+"\x00"+u+"\x00"+p {
				_ = c.Send(":"+name+" 900 "+nick+" "+nick+"!u@h "+u+" :You are now logged in", ":"+name+" 903 "+nick+" :SASL authentication successful")
			} else {
				_ = c.Send(":" + name + " 904 " + nick + " :SASL authentication failed")
			}
		case "NICK":
			if len(f) > 1 {
				old := c.Nick()
				c.mu.Lock()
				c.nick = strings.TrimPrefix(f[1], ":")
				c.mu.Unlock()
				if registered {
					_ = c.Send(":" + old + "!u@h NICK " + c.Nick())
				}
			}
		case "USER":
			user = true
		case "PING":
			_ = c.Send(":" + name + " PONG " + name + " :" + strings.TrimPrefix(strings.Join(f[1:], " "), ":"))
		case "JOIN":
			// Joins are the test's to answer.
		case "QUIT":
			c.Close()
		}
		if !registered && !capping && user && c.Nick() != "" {
			registered = true
			nick := c.Nick()
			_ = c.Send(":"+name+" 001 "+nick+" :Welcome to the hostile network",
				":"+name+" 005 "+nick+" "+strings.Join(c.s.cfg.ISupport, " ")+" :are supported by this server")
			close(c.welcomed)
		}
	}
}

func (c *Conn) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Lines returns every line the client sent so far.
func (c *Conn) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Count counts the lines received so far that match (see irctest.Command).
func (c *Conn) Count(match func(irctest.Message) bool) (lines, bytes int) {
	for _, l := range c.Lines() {
		if match(irctest.Parse(l)) {
			lines++
			bytes += len(l)
		}
	}
	return lines, bytes
}

// Expect waits for a line, not returned by an earlier Expect, that
// matches, and returns it.
func (c *Conn) Expect(t tb.TB, timeout time.Duration, match func(irctest.Message) bool) irctest.Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for c.cursor < len(c.lines) {
			l := c.lines[c.cursor]
			c.cursor++
			if m := irctest.Parse(l); match(m) {
				c.mu.Unlock()
				return m
			}
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			t.Fatalf("hostileirc: connection ended (%v) before a match; the client sent:\n%s", err, tail(c.Lines()))
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("hostileirc: no match within %v; the client sent:\n%s", timeout, tail(c.Lines()))
		}
	}
}

// Skip marks every line received so far as seen by Expect.
func (c *Conn) Skip() {
	c.mu.Lock()
	c.cursor = len(c.lines)
	c.mu.Unlock()
}

func tail(lines []string) string {
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	for i, l := range lines {
		if len(l) > 200 {
			lines[i] = l[:200] + fmt.Sprintf("... (%d bytes)", len(l))
		}
	}
	return strings.Join(lines, "\n")
}
