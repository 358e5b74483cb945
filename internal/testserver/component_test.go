package testserver_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testserver"
)

// TestComponentStreamRules pins what each server does with a component's
// stanzas that the gateway must never send, and with a second connection
// for the same domain: docs/servers.md ("Prosody and ejabberd") relies
// on these facts, and a server upgrade that changes one fails here.
func TestComponentStreamRules(t *testing.T) {
	const (
		keeps  = "keeps the stream"
		closes = "closes the stream"
	)
	cases := []struct {
		name, stanza      string
		prosody, ejabberd string // keeps or closes, or a stanza error condition sent back
	}{
		{"from the exact domain", `<message from='x@gw.example.test/r' to='alice@example.test'><body>x</body></message>`, keeps, keeps},
		{"from the domain in upper case", `<message from='x@GW.example.test' to='alice@example.test'><body>x</body></message>`, closes, keeps},
		{"from a subdomain", `<message from='x@sub.gw.example.test' to='alice@example.test'><body>x</body></message>`, closes, closes},
		{"from the server's domain", `<message from='x@example.test' to='alice@example.test'><body>x</body></message>`, closes, closes},
		{"without from", `<message to='alice@example.test'><body>x</body></message>`, keeps, closes},
		{"without to", `<message from='x@gw.example.test'><body>x</body></message>`, "bad-request", closes},
		{"to a subdomain", `<message from='x@gw.example.test' to='y@sub.gw.example.test'><body>x</body></message>`, "not-allowed", "forbidden"},
	}
	for _, kind := range []string{testserver.KindProsody, testserver.KindEjabberd} {
		t.Run(kind, func(t *testing.T) {
			t.Setenv(testserver.XMPPServerEnv, kind)
			s := testserver.StartXMPP(t, testserver.XMPPConfig{
				Components: []testserver.Component{{Domain: "gw.example.test", Secret: "s"}},
				Users:      []testserver.User{{Name: "alice", Password: "alice-pw"}},
			})
			for _, tc := range cases {
				want := tc.prosody
				if kind == testserver.KindEjabberd {
					want = tc.ejabberd
				}
				c, hello := componentHandshake(t, s.ComponentAddr, "gw.example.test", "s")
				if !strings.Contains(hello, "<handshake") {
					t.Fatalf("handshake refused: %s", hello)
				}
				fmt.Fprint(c, tc.stanza+`<iq from='gw.example.test' to='gw.example.test' id='alive' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`)
				got := c.until(contains("id='alive'", `id="alive"`, "</stream:stream>"))
				c.Close()
				result := keeps
				switch {
				case strings.Contains(got, "<stream:error>"):
					result = closes
				case strings.Contains(got, "type='error'") || strings.Contains(got, `type="error"`):
					result = regexp.MustCompile(`<([a-z-]+) xmlns=.urn:ietf:params:xml:ns:xmpp-stanzas.`).FindStringSubmatch(got)[1]
				}
				if result != want {
					t.Errorf("a stanza %s: the server %s, want %s; it sent:\n%s", tc.name, result, want, got)
				}
			}

			// A second connection for a connected domain: Prosody refuses it,
			// ejabberd takes both and spreads stanzas over them.
			first, hello := componentHandshake(t, s.ComponentAddr, "gw.example.test", "s")
			defer first.Close()
			if !strings.Contains(hello, "<handshake") {
				t.Fatalf("handshake refused: %s", hello)
			}
			second, hello := componentHandshake(t, s.ComponentAddr, "gw.example.test", "s")
			defer second.Close()
			accepted := strings.Contains(hello, "<handshake")
			if accepted != (kind == testserver.KindEjabberd) || (!accepted && !strings.Contains(hello, "<conflict")) {
				t.Errorf("a second connection for the domain got: %s", hello)
			}
		})
	}
}

// rawStream is a raw component connection.
type rawStream struct {
	net.Conn
	r *bufio.Reader
}

var streamHeader = regexp.MustCompile(`<stream:stream[^>]* id=['"]([^'"]+)['"][^>]*>`)

// componentHandshake opens an XEP-0114 stream as domain and returns it with
// the server's answer to the handshake (a handshake element, or a stream
// error: Prosody refuses a second connection for a domain with conflict).
func componentHandshake(t *testing.T, addr, domain, secret string) (*rawStream, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawStream{Conn: c, r: bufio.NewReader(c)}
	fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>`, domain)
	m := streamHeader.FindStringSubmatch(s.until(func(got string) bool { return streamHeader.MatchString(got) }))
	if m == nil {
		c.Close()
		t.Fatalf("no stream header with an id from %s", addr)
	}
	h := sha1.Sum([]byte(m[1] + secret))
	fmt.Fprintf(c, "<handshake>%s</handshake>", hex.EncodeToString(h[:]))
	return s, s.until(contains("<handshake", "</stream:stream>"))
}

// until reads what the server sends until done says so, the connection ends
// or 5 s pass.
func (s *rawStream) until(done func(string) bool) string {
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	for !done(b.String()) {
		r, _, err := s.r.ReadRune()
		if err != nil {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// contains is a condition for until: any of the marks arrived.
func contains(marks ...string) func(string) bool {
	return func(got string) bool {
		for _, m := range marks {
			if strings.Contains(got, m) {
				return true
			}
		}
		return false
	}
}
