// Package hostileimap is a scripted IMAP server for tests: plain TCP on
// loopback, it answers LOGIN, SELECT, SEARCH and NOOP like a real server
// (no IDLE, so clients poll), and answers every FETCH with a poison the
// test chooses, then hangs up. It counts connections, fetches and the
// bytes of poison written.
package hostileimap

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// Poison writes the server's answer to a FETCH. It stops at the first
// write error (the client hung up).
type Poison func(w io.Writer) error

// maxLine bounds what the server reads of one client line.
const maxLine = 64 << 10

// writeTimeout bounds how long one poison may take to write.
const writeTimeout = 10 * time.Second

// Server is a listening scripted server.
type Server struct {
	poison   Poison
	l        net.Listener
	accepted atomic.Int64
	fetches  atomic.Int64
	written  atomic.Int64
	messages atomic.Uint32
}

// Start listens on loopback until the test ends. The mailbox is empty
// until SetMessages.
func Start(t tb.TB, p Poison) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hostileimap: listen: %v", err)
	}
	s := &Server{poison: p, l: l}
	t.Cleanup(func() { l.Close() })
	go s.accept()
	return s
}

// Port is the listening port.
func (s *Server) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// Accepted counts the connections accepted so far.
func (s *Server) Accepted() int { return int(s.accepted.Load()) }

// Fetches counts the FETCH commands answered with poison.
func (s *Server) Fetches() int { return int(s.fetches.Load()) }

// Written is how many bytes of poison reached the connections so far.
func (s *Server) Written() int64 { return s.written.Load() }

// SetMessages makes INBOX hold mails with UIDs 1 to n.
func (s *Server) SetMessages(n uint32) { s.messages.Store(n) }

func (s *Server) accept() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		go s.serve(c)
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, maxLine)
	w := func(format string, args ...any) error {
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := fmt.Fprintf(c, format, args...)
		return err
	}
	if w("* OK [CAPABILITY IMAP4rev1] hostile ready\r\n") != nil {
		return
	}
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			return
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		if cmd == "UID" && len(f) > 2 {
			cmd = strings.ToUpper(f[2])
		}
		n := s.messages.Load()
		switch cmd {
		case "CAPABILITY":
			err = w("* CAPABILITY IMAP4rev1\r\n%s OK done\r\n", tag)
		case "LOGIN", "NOOP", "CHECK":
			err = w("%s OK done\r\n", tag)
		case "SELECT", "EXAMINE":
			err = w("* %d EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT %d] ok\r\n%s OK [READ-ONLY] done\r\n", n, n+1, tag)
		case "SEARCH":
			var b strings.Builder
			b.WriteString("* SEARCH")
			for u := uint32(1); u <= n; u++ {
				fmt.Fprintf(&b, " %d", u)
			}
			err = w("%s\r\n%s OK done\r\n", b.String(), tag)
		case "FETCH":
			s.fetches.Add(1)
			_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
			_ = s.poison(countingWriter{c, &s.written})
			return
		case "LOGOUT":
			_ = w("* BYE bye\r\n%s OK done\r\n", tag)
			return
		default:
			err = w("%s BAD unknown command\r\n", tag)
		}
		if err != nil {
			return
		}
	}
}

// stream writes n bytes of b, in chunks, until n or a write error.
func stream(w io.Writer, b byte, n int64) error {
	chunk := []byte(strings.Repeat(string(b), 64<<10))
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// DeepBodyStructure answers with a BODYSTRUCTURE that opens n parentheses
// and never closes them.
func DeepBodyStructure(n int64) Poison {
	return func(w io.Writer) error {
		if _, err := io.WriteString(w, "* 1 FETCH (UID 1 RFC822.SIZE 100 BODYSTRUCTURE "); err != nil {
			return err
		}
		return stream(w, '(', n)
	}
}

// HugeLiteral answers with a header section announced as a literal of
// announced bytes, of which it sends at most send.
func HugeLiteral(announced, send int64) Poison {
	return func(w io.Writer) error {
		if _, err := fmt.Fprintf(w, "* 1 FETCH (UID 1 RFC822.SIZE 100 BODY[HEADER.FIELDS (FROM SENDER)]<0> {%d}\r\n", announced); err != nil {
			return err
		}
		return stream(w, 'a', min(announced, send))
	}
}

// EndlessLine answers with a header section as a quoted string of n bytes
// and no line end.
func EndlessLine(n int64) Poison {
	return func(w io.Writer) error {
		if _, err := io.WriteString(w, "* 1 FETCH (UID 1 RFC822.SIZE 100 BODY[HEADER.FIELDS (FROM SENDER)]<0> \""); err != nil {
			return err
		}
		return stream(w, 'a', n)
	}
}
