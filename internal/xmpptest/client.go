// Package xmpptest is a real XMPP client for integration tests: it logs in to
// a server over c2s, buffers every stanza it receives, and lets a test send
// raw stanzas and wait for the ones it expects.
package xmpptest

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/tb"
)

// Client is one logged-in XMPP client.
type Client struct {
	sess *xmpp.Session
	conn net.Conn
	jid  jid.JID

	writeMu sync.Mutex
	mu      sync.Mutex
	buf     []*Stanza
	arrived chan struct{} // signalled on every new stanza
	filter  func(*Stanza) bool
	readErr error
	done    chan struct{}
}

// Dial logs user in to the server at addr over plain TCP (the test servers
// run on loopback without TLS), binds a resource and fetches the roster. It
// sends no presence.
func Dial(t tb.TB, ctx context.Context, addr string, user jid.JID, password string) *Client {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("xmpptest: dial %s: %v", addr, err)
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", password, sasl.Plain), xmpp.BindResource()}
	// Loopback is treated as secure so that SASL PLAIN may run without TLS.
	sess, err := xmpp.NewSession(ctx, user.Domain(), user, conn, xmpp.Secure, xmpp.NewNegotiator(
		func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		conn.Close()
		t.Fatalf("xmpptest: log in as %s: %v", user, err)
	}
	c := &Client{sess: sess, conn: conn, jid: sess.LocalAddr(), arrived: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.Close)
	// Fetch the roster, as real clients do: servers send roster pushes and
	// subscription approvals only to resources that did.
	c.IQ(t, 10*time.Second, `<iq type='get' id='roster-at-login'><query xmlns='jabber:iq:roster'/></iq>`)
	return c
}

// Filter makes the reader call keep for every stanza it receives from now
// on, in order, and buffer only those it returns true for (nil buffers
// everything). keep runs on the reader goroutine: a load test uses it to
// count and time stanzas as they arrive without buffering them.
func (c *Client) Filter(keep func(*Stanza) bool) {
	c.mu.Lock()
	c.filter = keep
	c.mu.Unlock()
}

// JID returns the client's full JID.
func (c *Client) JID() jid.JID { return c.jid }

// Close ends the stream and the connection.
func (c *Client) Close() {
	select {
	case <-c.done:
		return
	default:
	}
	closed := make(chan struct{})
	go func() { c.sess.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Second):
	}
	c.conn.Close()
	<-c.done
}

func (c *Client) read() {
	defer close(c.done)
	r := c.sess.TokenReader()
	defer r.Close()
	d := xml.NewTokenDecoder(r)
	for {
		tok, err := d.Token()
		if err != nil {
			c.fail(err)
			return
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			if _, end := tok.(xml.EndElement); end {
				c.fail(fmt.Errorf("stream closed by the server"))
				return
			}
			continue
		}
		s, err := readStanza(d, start)
		if err != nil {
			c.fail(err)
			return
		}
		if s.XMLName.Local == "iq" && s.Type == "set" && s.Has("jabber:iq:roster", "query") {
			// Roster pushes must be acknowledged, as every client does.
			go c.send(fmt.Sprintf(`<iq type='result' id='%s'/>`, escape(s.ID)))
			continue
		}
		c.mu.Lock()
		filter := c.filter
		c.mu.Unlock()
		if filter != nil && !filter(s) {
			continue
		}
		c.mu.Lock()
		c.buf = append(c.buf, s)
		c.mu.Unlock()
		select {
		case c.arrived <- struct{}{}:
		default:
		}
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	c.readErr = err
	c.mu.Unlock()
	select {
	case c.arrived <- struct{}{}:
	default:
	}
}

func (c *Client) send(raw string) error {
	// Namespaces are carried by the names of the decoded tokens; the
	// declarations themselves would be written twice.
	r := xmlstream.RemoveAttr(func(_ xml.StartElement, a xml.Attr) bool {
		return a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")
	})(xml.NewDecoder(strings.NewReader(raw)))
	// A deadline of our own, not a context: mellium's per-write context
	// goroutine can set a past deadline on the next writer's stanza.
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	defer c.conn.SetWriteDeadline(time.Time{})
	return c.sess.Send(context.Background(), r)
}

// SendRaw sends one stanza written as raw XML; it is sent in the stream's
// namespace, as a client would.
func (c *Client) SendRaw(t tb.TB, raw string) {
	t.Helper()
	if err := c.send(raw); err != nil {
		t.Fatalf("xmpptest: send %s: %v", raw, err)
	}
}

// Expect returns the first stanza, buffered or still to come, that match
// accepts, and removes it from the buffer. It fails the test after timeout.
func (c *Client) Expect(t tb.TB, timeout time.Duration, match func(*Stanza) bool) *Stanza {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if s := c.take(match); s != nil {
			return s
		}
		select {
		case <-c.arrived:
		case <-deadline.C:
			t.Fatalf("xmpptest: %s: no matching stanza within %v; received:\n%s", c.jid, timeout, c.describe())
			return nil
		}
	}
}

// ExpectNone fails the test if a stanza that match accepts arrives within d.
func (c *Client) ExpectNone(t tb.TB, d time.Duration, match func(*Stanza) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if s := c.take(match); s != nil {
			t.Fatalf("xmpptest: %s: unexpected stanza: %s", c.jid, s)
		}
		select {
		case <-c.arrived:
		case <-deadline.C:
			return
		}
	}
}

// IQ sends an iq, which must carry an id, and returns its answer.
func (c *Client) IQ(t tb.TB, timeout time.Duration, raw string) *Stanza {
	t.Helper()
	var head struct {
		ID string `xml:"id,attr"`
	}
	if err := xml.Unmarshal([]byte(raw), &head); err != nil || head.ID == "" {
		t.Fatalf("xmpptest: IQ needs an iq with an id: %s", raw)
	}
	c.SendRaw(t, raw)
	return c.Expect(t, timeout, func(s *Stanza) bool {
		return s.XMLName.Local == "iq" && s.ID == head.ID && (s.Type == "result" || s.Type == "error")
	})
}

func (c *Client) take(match func(*Stanza) bool) *Stanza {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.buf {
		if match(s) {
			c.buf = append(c.buf[:i], c.buf[i+1:]...)
			return s
		}
	}
	return nil
}

func (c *Client) describe() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, s := range c.buf {
		line := s.String()
		if len(line) > 400 {
			line = line[:400] + "…"
		}
		b.WriteString("  " + line + "\n")
	}
	if c.readErr != nil {
		fmt.Fprintf(&b, "  (reader stopped: %v)\n", c.readErr)
	}
	if b.Len() == 0 {
		return "  (nothing)\n"
	}
	return b.String()
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
