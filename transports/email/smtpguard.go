package email

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// maxSMTPReply bounds one SMTP reply, all its lines together. go-smtp
// bounds each line (2000 bytes) but not how many lines a multi-line reply
// ("250-...") has, and gathers them all in memory; a real EHLO reply is
// well under a kilobyte.
const maxSMTPReply = 64 << 10

// errSMTPLimit marks a connection failed by the SMTP guard.
var errSMTPLimit = errors.New("the SMTP server broke a safety limit")

// smtpGuardConn is a connection to an SMTP server as go-smtp sees it:
// every reply is bounded in size. Once the bound is broken, every read
// fails and the connection is closed.
type smtpGuardConn struct {
	net.Conn
	pending []byte // served before the connection (a replayed greeting)
	reply   int    // bytes of the reply being read
	col     int    // position in the current line
	last    bool   // the current line ends the reply ("250 " rather than "250-")

	mu  sync.Mutex
	err error
}

// Read implements net.Conn.
func (c *smtpGuardConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if serr := c.scan(p[:n]); serr != nil {
		c.mu.Lock()
		c.err = serr
		c.mu.Unlock()
		c.Conn.Close()
		return 0, serr
	}
	return n, err
}

// scan follows the reply lines: the fourth byte of a line tells whether
// the reply goes on.
func (c *smtpGuardConn) scan(p []byte) error {
	for _, b := range p {
		c.reply++
		if c.reply > maxSMTPReply {
			return fmt.Errorf("%w: a reply longer than %d bytes", errSMTPLimit, maxSMTPReply)
		}
		if c.col == 3 {
			c.last = b != '-'
		}
		c.col++
		if b == '\n' {
			if c.last || c.col <= 4 {
				c.reply = 0
			}
			c.col, c.last = 0, false
		}
	}
	return nil
}

// replayedSMTPGreeting stands for the server's greeting, which go-smtp
// waits for, on a connection upgraded with STARTTLS.
var replayedSMTPGreeting = []byte("220 TLS established\r\n")

// startTLSSMTP does the STARTTLS exchange itself, so that go-smtp reads
// the decrypted stream only through the guard (go-smtp's own STARTTLS
// upgrades below any wrapper it is given). Nothing the server said
// before TLS is kept: go-smtp says EHLO again.
func startTLSSMTP(ctx context.Context, conn net.Conn, cfg *tls.Config) (*smtpGuardConn, error) {
	br := bufio.NewReaderSize(conn, 4096)
	if _, err := readSMTPReply(br, 220); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := conn.Write([]byte("EHLO localhost\r\n")); err != nil {
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	lines, err := readSMTPReply(br, 250)
	if err != nil {
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	offered := false
	for _, l := range lines[1:] {
		offered = offered || bytes.EqualFold(bytes.TrimSpace(l[4:]), []byte("STARTTLS"))
	}
	if !offered {
		return nil, errors.New("the server does not offer STARTTLS")
	}
	if _, err := conn.Write([]byte("STARTTLS\r\n")); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	if _, err := readSMTPReply(br, 220); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	if br.Buffered() > 0 {
		// Data after the answer would be read as if it came over TLS.
		return nil, errors.New("STARTTLS: the server sent data before the TLS handshake")
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	return &smtpGuardConn{Conn: tc, pending: bytes.Clone(replayedSMTPGreeting)}, nil
}

// readSMTPReply reads one reply of at most maxStartTLSLines lines and
// checks its code.
func readSMTPReply(br *bufio.Reader, want int) ([][]byte, error) {
	var lines [][]byte
	for {
		if len(lines) == maxStartTLSLines {
			return nil, fmt.Errorf("%w: a reply of more than %d lines", errSMTPLimit, maxStartTLSLines)
		}
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if len(line) < 3 {
			return nil, fmt.Errorf("not a reply: %q", clip(string(line)))
		}
		code, err := strconv.Atoi(string(line[:3]))
		if err != nil || code != want {
			return nil, fmt.Errorf("unexpected reply: %s", clip(string(line)))
		}
		if len(line) < 4 {
			line = append(line, ' ')
		}
		lines = append(lines, line)
		if line[3] != '-' {
			return lines, nil
		}
	}
}
