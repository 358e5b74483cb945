package irc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/lrstanley/girc"
	"golang.org/x/time/rate"
)

// Bounds on what a server may send on one connection.
const (
	// maxLineBytes bounds one line from the server: 8191 bytes of IRCv3
	// tags (their limit for what servers send) and the 512-byte line.
	// A longer line is skipped, and the user told.
	maxLineBytes = 8191 + 512
	// maxSkipBytes bounds the bytes skipped of one over-long line: a line
	// still running past it ends the connection.
	maxSkipBytes = 1 << 20
	// dialTimeout bounds the TCP connection and the TLS handshake.
	dialTimeout = 20 * time.Second
)

// Reasons for which lines are dropped, as told to the user.
const (
	dropLong = "too long"
	dropNick = "an invalid nickname"
	dropChan = "an invalid channel name"
)

var errEndlessLine = fmt.Errorf("the server sent a line longer than %d bytes", maxSkipBytes)

var errSessionGone = errors.New("irc: session closed")

// wireDropped reports that a connection dropped a line from the server.
type wireDropped struct {
	net    string
	gen    int
	reason string
}

// wireConn sits between girc and the server. It reads the server's lines
// itself, each bounded in length, parses them (a panic costs the line) and
// hands every one to the session, in order. girc sees only what it needs
// for the connection itself: PING and PONG (the server's PINGs paced),
// CAP, SASL and the welcome, each bounded in number. girc's state tracking
// (channels, users, MOTD, server options) therefore never grows with what
// a server sends, and its ISUPPORT-derived line length, which a hostile
// server could shrink to nothing, stays at girc's default.
type wireConn struct {
	net.Conn
	r        *bufio.Reader
	out      []byte // lines for girc not read yet
	emit     func(any) bool
	net_     string
	gen      int
	welcomed *atomic.Bool
	pings    *rate.Limiter
	counts   map[string]int // lines of each kind passed to girc
	idle     atomic.Int64   // girc's read timeout, renewed by every line
}

// SetReadDeadline records girc's timeout, which girc means as the longest
// silence from the server: every line renews it, girc's or not, so a busy
// connection whose lines girc never sees is not cut.
func (w *wireConn) SetReadDeadline(t time.Time) error {
	w.idle.Store(int64(time.Until(t)))
	return w.Conn.SetReadDeadline(t)
}

func newWireConn(c net.Conn, network string, gen int, welcomed *atomic.Bool, emit func(any) bool) *wireConn {
	return &wireConn{
		Conn:     c,
		r:        bufio.NewReaderSize(c, maxLineBytes+2),
		emit:     emit,
		net_:     network,
		gen:      gen,
		welcomed: welcomed,
		pings:    rate.NewLimiter(1, 5),
		counts:   make(map[string]int),
	}
}

// Read gives girc the lines it should see; the session gets them all.
func (w *wireConn) Read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("irc: panic reading from the server: %v", r)
		}
	}()
	for len(w.out) == 0 {
		line, err := w.readLine()
		if err != nil {
			return 0, err
		}
		if idle := time.Duration(w.idle.Load()); idle > 0 {
			_ = w.Conn.SetReadDeadline(time.Now().Add(idle))
		}
		e := parseLine(line)
		if e == nil {
			continue
		}
		if !w.emit(ircEvent{w.net_, w.gen, *e}) {
			return 0, errSessionGone
		}
		if w.forGirc(e) {
			w.out = append(append(w.out[:0], line...), '\r', '\n')
		}
	}
	n = copy(p, w.out)
	w.out = w.out[n:]
	return n, nil
}

// readLine returns the next non-empty line without its end, skipping the
// over-long ones. The slice is valid until the next call.
func (w *wireConn) readLine() ([]byte, error) {
	for {
		line, err := w.r.ReadSlice('\n')
		if err == nil {
			line = bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		skipped := len(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			if skipped > maxSkipBytes {
				return nil, errEndlessLine
			}
			line, err = w.r.ReadSlice('\n')
			skipped += len(line)
		}
		if err != nil {
			return nil, err
		}
		if !w.emit(wireDropped{w.net_, w.gen, dropLong}) {
			return nil, errSessionGone
		}
	}
}

// parseLine parses one line, or returns nil if girc cannot (or panics).
func parseLine(line []byte) (e *girc.Event) {
	defer func() {
		if recover() != nil {
			e = nil
		}
	}()
	e = girc.ParseEvent(string(line))
	if e == nil || e.Command == "" {
		return nil
	}
	return e
}

// gircLimits bounds, per connection, the lines of each kind girc gets:
// beyond, a server's repeated CAP or AUTHENTICATE would make girc answer
// each time, outside the paced queue.
var gircLimits = map[string]int{
	girc.CAP:                 32,
	girc.AUTHENTICATE:        4,
	girc.RPL_WELCOME:         1,
	girc.RPL_LOGGEDIN:        4,
	girc.RPL_LOGGEDOUT:       4,
	girc.RPL_NICKLOCKED:      4,
	girc.RPL_SASLSUCCESS:     4,
	girc.ERR_SASLFAIL:        4,
	girc.ERR_SASLTOOLONG:     4,
	girc.ERR_SASLABORTED:     4,
	girc.ERR_SASLALREADY:     4,
	girc.RPL_SASLMECHS:       4,
	girc.ERR_NICKNAMEINUSE:   8,
	girc.ERR_NICKCOLLISION:   8,
	girc.ERR_UNAVAILRESOURCE: 8,
}

// forGirc decides whether girc sees a line.
func (w *wireConn) forGirc(e *girc.Event) bool {
	switch e.Command {
	case girc.PING:
		return w.pings.Allow()
	case girc.PONG:
		return true
	case girc.RPL_WELCOME:
		w.welcomed.Store(true)
	case girc.ERR_NICKNAMEINUSE, girc.ERR_NICKCOLLISION, girc.ERR_UNAVAILRESOURCE:
		if w.welcomed.Load() {
			return false // girc's nick-collision hook is for registration only
		}
	}
	limit, ok := gircLimits[e.Command]
	if !ok || w.counts[e.Command] >= limit {
		return false
	}
	w.counts[e.Command]++
	return true
}

// wireDialer is how girc connects: TCP through the network's dialer (for
// a network the admin did not list, one that refuses the gateway's own
// networks), TLS done here rather than by girc, then a wireConn.
type wireDialer struct {
	ctx  context.Context
	base *net.Dialer
	tls  *tls.Config // nil: plain text
	wrap func(net.Conn) net.Conn
}

// Dial implements girc.Dialer.
func (d wireDialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, dialTimeout)
	defer cancel()
	c, err := d.base.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("irc: dial %s: %w", addr, err)
	}
	if d.tls != nil {
		tc := tls.Client(c, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("irc: TLS with %s: %w", addr, err)
		}
		c = tc
	}
	return d.wrap(c), nil
}
