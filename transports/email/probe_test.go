package email_test

import (
	"bufio"
	"encoding/xml"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"passerelle.dev/passerelle/internal/xmpptest"
)

// probe is a loopback listener standing for a host a user names: it
// records every connection and every login attempt that reaches it. An
// "imap" probe greets like an IMAP server and refuses every login; a
// "silent" one accepts connections and never says a word.
type probe struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  int
	logins []string // the LOGIN/AUTHENTICATE lines received
}

func startProbe(t *testing.T, ip, mode string) *probe {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{ln: ln}
	var wg sync.WaitGroup
	var open sync.Map
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
			open.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer open.Delete(c)
				defer c.Close()
				p.serve(c, mode)
			}()
		}
	}()
	return p
}

func (p *probe) serve(c net.Conn, mode string) {
	r := bufio.NewReader(c)
	if mode == "imap" {
		_, _ = c.Write([]byte("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] probe ready\r\n"))
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if mode != "imap" {
			continue
		}
		tag, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		cmd, _, _ := strings.Cut(strings.ToUpper(rest), " ")
		switch cmd {
		case "LOGIN", "AUTHENTICATE":
			p.mu.Lock()
			p.logins = append(p.logins, line)
			p.mu.Unlock()
			_, _ = c.Write([]byte(tag + " NO [AUTHENTICATIONFAILED] probe refuses\r\n"))
		case "CAPABILITY":
			_, _ = c.Write([]byte("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + " OK done\r\n"))
		case "LOGOUT":
			_, _ = c.Write([]byte("* BYE\r\n" + tag + " OK bye\r\n"))
			return
		default:
			_, _ = c.Write([]byte(tag + " BAD unknown\r\n"))
		}
	}
}

func (p *probe) host() string { h, _, _ := net.SplitHostPort(p.ln.Addr().String()); return h }
func (p *probe) port() string { _, pt, _ := net.SplitHostPort(p.ln.Addr().String()); return pt }

// seen returns how many connections and login attempts reached the probe.
func (p *probe) seen() (conns int, logins []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns, append([]string(nil), p.logins...)
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return p
}

// servers are registration values naming both servers at host:port.
func servers(address, password, host, port string) map[string]string {
	v := map[string]string{
		"address":   address,
		"imap_host": host, "imap_port": port, "imap_security": "plain",
		"smtp_host": host, "smtp_port": port, "smtp_security": "plain",
	}
	if password != "" {
		v["password"] = password
	}
	return v
}

// errorText is the text of a stanza error.
func errorText(s *xmpptest.Stanza) string {
	var e struct {
		Error struct {
			Text string `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text"`
		} `xml:"error"`
	}
	_ = xml.Unmarshal([]byte("<r>"+s.Inner+"</r>"), &e)
	return e.Error.Text
}

func itoa(n int) string { return strconv.Itoa(n) }
