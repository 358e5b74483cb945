package email

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is a loopback server that runs script on each connection and
// counts the bytes it wrote.
type scripted struct {
	l       net.Listener
	written atomic.Int64
}

func startScripted(t *testing.T, script func(s *scripted, c net.Conn, br *bufio.Reader)) *scripted {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				script(s, c, bufio.NewReader(c))
			}()
		}
	}()
	return s
}

// send writes text, then n bytes of fill, counting what was written;
// false when the client hung up.
func (s *scripted) send(c net.Conn, text string, fill byte, n int) bool {
	k, err := c.Write([]byte(text))
	s.written.Add(int64(k))
	chunk := []byte(strings.Repeat(string(fill), 64<<10))
	for err == nil && n > 0 {
		k, err = c.Write(chunk[:min(n, len(chunk))])
		s.written.Add(int64(k))
		n -= k
	}
	return err == nil
}

func (s *scripted) server(security string, roots *x509.CertPool) server {
	return server{host: "127.0.0.1", port: s.l.Addr().(*net.TCPAddr).Port, security: security, roots: roots, timeout: 10 * time.Second}
}

// testCert is a self-signed certificate for 127.0.0.1 and a pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// imapStartTLS plays an IMAP server up to and through STARTTLS.
func imapStartTLS(c net.Conn, br *bufio.Reader, cert tls.Certificate) (*tls.Conn, bool) {
	if _, err := c.Write([]byte("* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n")); err != nil {
		return nil, false
	}
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(strings.ToUpper(line), "STARTTLS") {
		return nil, false
	}
	tag, _, _ := strings.Cut(line, " ")
	if _, err := c.Write([]byte(tag + " OK go ahead\r\n")); err != nil {
		return nil, false
	}
	tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
	return tc, tc.Handshake() == nil
}

// TestIMAPGuardAfterSTARTTLS: over STARTTLS too, go-imap reads the
// decrypted stream through the guard. Before, go-imap upgraded the
// connection itself, below the guard, and 5 MB of "(" after the TLS
// handshake overflowed the stack.
func TestIMAPGuardAfterSTARTTLS(t *testing.T) {
	cert, roots := testCert(t)
	srv := startScripted(t, func(s *scripted, c net.Conn, br *bufio.Reader) {
		tc, ok := imapStartTLS(c, br, cert)
		if !ok {
			return
		}
		defer tc.Close()
		s.send(tc, "* 1 FETCH (UID 1 BODYSTRUCTURE ", '(', 5<<20)
	})
	a := account{username: "u", password: "p", imap: srv.server(secStartTLS, roots)}
	c, err := a.dialIMAP(context.Background(), nil)
	if err == nil {
		c.Close()
		t.Fatal("logged in through the poison")
	}
	if !strings.Contains(err.Error(), "safety limit") || !strings.Contains(err.Error(), "nested") {
		t.Errorf("got %v", err)
	}
}

// TestIMAPSTARTTLSRefusals: what a server (or a man in the middle) sends
// before TLS cannot log the client in unencrypted nor slip data into the
// encrypted stream.
func TestIMAPSTARTTLSRefusals(t *testing.T) {
	for _, tc := range []struct{ name, script, want string }{
		{"PREAUTH", "* PREAUTH welcome\r\n", "PREAUTH"},
		{"refused", "* OK hi\r\nS1 NO not today\r\n", "STARTTLS refused"},
		{"injected", "* OK hi\r\nS1 OK go\r\n* 1 EXISTS\r\n", "data before the TLS handshake"},
		{"BYE", "* BYE busy\r\n", "BYE busy"},
		{"long greeting", "* OK " + strings.Repeat("a", 100<<10), "safety limit"},
		{"endless untagged", "* OK hi\r\n" + strings.Repeat("* x\r\n", 1000), "no answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startScripted(t, func(s *scripted, c net.Conn, br *bufio.Reader) {
				s.send(c, tc.script, 0, 0)
				_, _ = br.ReadString('\n')
				time.Sleep(100 * time.Millisecond)
			})
			g, err := startTLSIMAP(context.Background(), dialT(t, srv), &tls.Config{ServerName: "127.0.0.1"})
			if err == nil {
				g.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func dialT(t *testing.T, s *scripted) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSMTPReplyBounded: go-smtp bounds a reply's lines but not their
// number: a server that never ends its greeting ("220-" lines, 100 MB)
// was read whole into memory. The guard fails the connection after
// maxSMTPReply bytes, in clear and after STARTTLS alike.
func TestSMTPReplyBounded(t *testing.T) {
	cert, roots := testCert(t)
	endless := strings.Repeat("220-"+strings.Repeat("x", 996)+"\r\n", 64)
	for _, sec := range []string{secPlain, secStartTLS} {
		t.Run(sec, func(t *testing.T) {
			srv := startScripted(t, func(s *scripted, c net.Conn, br *bufio.Reader) {
				if sec == secStartTLS {
					s.send(c, "220 hi\r\n", 0, 0)
					if _, err := br.ReadString('\n'); err != nil { // EHLO
						return
					}
					s.send(c, "250-hello\r\n250 STARTTLS\r\n", 0, 0)
					if _, err := br.ReadString('\n'); err != nil {
						return
					}
					s.send(c, "220 go ahead\r\n", 0, 0)
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
					if tc.Handshake() != nil {
						return
					}
					c, br = tc, bufio.NewReader(tc)
					// The client says EHLO again over TLS.
					if _, err := br.ReadString('\n'); err != nil {
						return
					}
				}
				for range 100 << 20 / len(endless) {
					if !s.send(c, endless, 0, 0) {
						return
					}
				}
			})
			a := account{username: "u", password: "p", smtp: srv.server(sec, roots)}
			c, err := a.dialSMTP(context.Background())
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "safety limit") {
				t.Errorf("got %v", err)
			}
			if w := srv.written.Load(); w > 16<<20 {
				t.Errorf("%d bytes written: the client kept reading", w)
			}
		})
	}
}
