package email

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// Bounds on what an IMAP server may send. go-imap's client parses nested
// lists (BODYSTRUCTURE) by recursion, which a few megabytes of "(" turn
// into a fatal stack overflow that no recover catches, and it reads
// literals and lines of any size into memory. imapGuard sits between the
// (decrypted) connection and go-imap and fails the connection before
// either can happen.
const (
	// maxIMAPDepth bounds parenthesis nesting, far above any real
	// BODYSTRUCTURE (the watcher walks 32 levels of it, maxDepth).
	maxIMAPDepth = 128
	// maxIMAPLiteral bounds one literal: four times the largest fetch the
	// watcher asks for (a text part, textLimit, or maxHTMLFetch).
	maxIMAPLiteral = 1 << 20
	// maxIMAPLine bounds the bytes of one response outside its literals:
	// a SEARCH of 200,000 UIDs or a BODYSTRUCTURE of thousands of parts
	// fits.
	maxIMAPLine = 2 << 20
	// maxIMAPResponse bounds one response with its literals.
	maxIMAPResponse = 8 << 20
	// maxIMAPUntagged bounds the bytes between two tagged responses, which
	// go-imap may gather for one command (SEARCH results, say).
	maxIMAPUntagged = 32 << 20
)

// errIMAPLimit marks a connection failed by the guard.
var errIMAPLimit = errors.New("the IMAP server broke a safety limit")

// lexer states: where the guard is in the server's byte stream.
const (
	stHead      = iota // the first words of a response: tag, number, type
	stStruct           // structured data: lists, strings, literals
	stQuoted           // inside a quoted string
	stQuotedEsc        // after a backslash in a quoted string
	stBrace            // after "{": the literal's size
	stBracePlus        // after "{n+"
	stBraceEnd         // after "{n}"
	stBraceSP          // after "{n} "
	stBraceCR          // after "{n}\r" or "{n} \r"
	stLiteral          // inside a literal
	stStatus           // after a status response's type
	stCode             // inside a status response's "[code"
	stText             // free text up to the end of the line
)

// imapLexer follows just enough of IMAP's lexical structure, as go-imap's
// client reads it, to bound nesting, literal sizes and response sizes.
// Quoted strings (which go-imap lets run across lines) and literals are
// skipped; status responses (OK, NO, BAD, BYE, PREAUTH, continuation
// requests) are text to the end of the line, apart from a response code,
// which go-imap may read across lines up to its "]".
type imapLexer struct {
	state    int
	depth    int   // open parentheses
	size     int64 // announced size of the literal being read, or left of it
	digits   int   // digits of the literal's size
	line     int64 // bytes of this response outside literals
	resp     int64 // bytes of this response
	untagged int64 // bytes since the last tagged response started

	// Head of the response: which word, and the current word.
	tagged bool
	word   int
	tok    [8]byte
	tokLen int
}

// scan checks the next bytes from the server; an error means the
// connection must be failed.
func (l *imapLexer) scan(p []byte) error {
	for i := 0; i < len(p); {
		if l.state == stLiteral {
			n := min(int64(len(p)-i), l.size)
			l.size -= n
			l.resp += n
			l.untagged += n
			i += int(n)
			if l.size == 0 {
				l.state = stStruct
			}
			if err := l.check(); err != nil {
				return err
			}
			continue
		}
		b := p[i]
		if l.resp == 0 {
			l.startResponse(b)
		}
		l.line++
		l.resp++
		l.untagged++
		if err := l.byte(b); err != nil {
			return err
		}
		if err := l.check(); err != nil {
			return err
		}
		i++
	}
	return nil
}

// startResponse resets the counters at a response's first byte.
func (l *imapLexer) startResponse(b byte) {
	l.state, l.depth, l.line, l.word, l.tokLen, l.tagged = stHead, 0, 0, 0, 0, false
	switch b {
	case '+':
		l.state = stText // a continuation request is text
	case '*':
	default:
		l.tagged = true
		l.untagged = 0 // a tagged response ends a command
	}
}

func (l *imapLexer) check() error {
	switch {
	case l.line > maxIMAPLine:
		return fmt.Errorf("%w: a response longer than %d bytes", errIMAPLimit, maxIMAPLine)
	case l.resp > maxIMAPResponse:
		return fmt.Errorf("%w: a response of more than %d bytes with its literals", errIMAPLimit, maxIMAPResponse)
	case l.untagged > maxIMAPUntagged:
		return fmt.Errorf("%w: more than %d bytes of responses for one command", errIMAPLimit, maxIMAPUntagged)
	}
	return nil
}

// endResponse is the end of a response's last line.
func (l *imapLexer) endResponse() {
	l.state, l.depth, l.line, l.resp = stHead, 0, 0, 0
}

// byte moves the lexer over one byte outside a literal.
func (l *imapLexer) byte(b byte) error {
	switch l.state {
	case stHead:
		l.head(b)
	case stStatus, stText:
		switch {
		case b == '\n':
			l.endResponse()
		case b == '[' && l.state == stStatus:
			l.state = stCode
		default:
			l.state = stText
		}
	case stCode:
		if b == ']' {
			l.state = stText
		}
	case stQuoted:
		switch b {
		case '\\':
			l.state = stQuotedEsc
		case '"':
			l.state = stStruct
		}
	case stQuotedEsc:
		l.state = stQuoted
	case stBrace:
		switch {
		case b >= '0' && b <= '9':
			l.size = l.size*10 + int64(b-'0')
			l.digits++
			if l.size > maxIMAPLiteral {
				return fmt.Errorf("%w: a literal of more than %d bytes", errIMAPLimit, maxIMAPLiteral)
			}
		case b == '+' && l.digits > 0:
			l.state = stBracePlus
		case b == '}' && l.digits > 0:
			l.state = stBraceEnd
		default:
			return l.structured(b)
		}
	case stBracePlus:
		if b != '}' {
			return l.structured(b)
		}
		l.state = stBraceEnd
	case stBraceEnd, stBraceSP, stBraceCR:
		// go-imap takes " \r\n", "\r\n", " \n" and "\n" after "{n}".
		switch {
		case b == ' ' && l.state == stBraceEnd:
			l.state = stBraceSP
		case b == '\r' && l.state != stBraceCR:
			l.state = stBraceCR
		case b == '\n':
			l.state = stLiteral
			if l.size == 0 {
				l.state = stStruct
			}
		default:
			return l.structured(b)
		}
	default:
		return l.structured(b)
	}
	return nil
}

// structured moves the lexer over one byte of structured data.
func (l *imapLexer) structured(b byte) error {
	l.state = stStruct
	switch b {
	case '(':
		l.depth++
		if l.depth > maxIMAPDepth {
			return fmt.Errorf("%w: lists nested more than %d deep", errIMAPLimit, maxIMAPDepth)
		}
	case ')':
		if l.depth > 0 {
			l.depth--
		}
	case '"':
		l.state = stQuoted
	case '{':
		l.state, l.size, l.digits = stBrace, 0, 0
	case '\n':
		l.endResponse()
	}
	return nil
}

// head reads the first words of a response to tell a status response,
// whose rest is text, from structured data. Until the type is known only
// atoms are expected: anything else makes go-imap fail the connection.
func (l *imapLexer) head(b byte) {
	switch b {
	case '\r':
		return // go-imap's CRLF; the line ends at "\n"
	case '\n':
		l.endResponse()
		return
	case ' ':
	default:
		if l.tokLen < len(l.tok) {
			l.tok[l.tokLen] = b
		}
		l.tokLen++
		return
	}
	long := l.tokLen > len(l.tok)
	tok := l.tok[:min(l.tokLen, len(l.tok))]
	l.tokLen = 0
	l.word++
	switch {
	case l.word == 1:
		return // the tag or "*": the type follows
	case l.word == 2 && !l.tagged && !long && len(tok) > 0 && allDigits(tok):
		return // "* n TYPE"
	case l.tagged || (!long && isStatus(tok)):
		// go-imap reads any tagged response as a status, and fails
		// the connection after the line if it is none.
		l.state = stStatus
	default:
		l.state = stStruct
	}
}
func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isStatus reports whether a response type is a status: its rest is text.
func isStatus(tok []byte) bool {
	switch string(asUpper(tok)) {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return true
	}
	return false
}

func asUpper(b []byte) []byte {
	var out [8]byte
	n := copy(out[:], b)
	for i := range n {
		if out[i] >= 'a' && out[i] <= 'z' {
			out[i] -= 'a' - 'A'
		}
	}
	return out[:n]
}

// guardConn is a connection to an IMAP server as go-imap sees it: what it
// reads went through the lexer first. Once a bound is broken, every read
// fails with the same error and the connection is closed.
type guardConn struct {
	net.Conn
	lex     imapLexer
	pending []byte // served before the connection (a replayed greeting)

	mu  sync.Mutex
	err error
}

func newGuardConn(c net.Conn) *guardConn { return &guardConn{Conn: c} }

// Read implements net.Conn.
func (c *guardConn) Read(p []byte) (int, error) {
	if err := c.tripped(); err != nil {
		return 0, err
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if lerr := c.lex.scan(p[:n]); lerr != nil {
			c.mu.Lock()
			c.err = lerr
			c.mu.Unlock()
			c.Conn.Close()
			return 0, lerr
		}
	}
	return n, err
}

// tripped is the error that failed the connection, if the guard did.
func (c *guardConn) tripped() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
