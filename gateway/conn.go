package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/stream"

	"passerelle.dev/passerelle/transports/backoff"
)

const (
	nsStream     = "http://etherx.jabber.org/streams"
	dialTimeout  = 10 * time.Second
	writeTimeout = 30 * time.Second
	// maxPingWait bounds the wait for a keep-alive answer, which is
	// otherwise twice the ping interval.
	maxPingWait = 30 * time.Second
)

// errEncode is returned by send for a stanza that cannot be encoded.
var errEncode = errors.New("gateway: cannot encode")

// errDisconnected is returned by send when the connection broke under it.
var errDisconnected = errors.New("gateway: disconnected from the XMPP server")

// errUnconfirmed is returned by sendConfirmed when the stanza could not be
// written on the connection asked for, or that connection ended before the
// server confirmed it.
var errUnconfirmed = errors.New("gateway: the XMPP server did not confirm the stanza on this connection")

// connection keeps the component connected: it dials with backoff, reads
// stanzas and hands them to the router, and serialises writes.
type connection struct {
	g *Gateway

	mu      sync.Mutex
	sess    *xmpp.Session // nil while disconnected; guarded by mu
	netConn net.Conn      // guarded by mu
	ready   chan struct{} // closed while connected; guarded by mu
	lost    chan struct{} // closed when the current connection ends; guarded by mu
	gen     uint64        // counts connections, the current or last one included; guarded by mu

	writeMu sync.Mutex  // one stanza at a time, each with its own deadline
	pings   sync.Map    // ping id → chan struct{}
	closing atomic.Bool // shutting down: no waiting for a reconnection
}

func newConnection(g *Gateway) *connection {
	return &connection{g: g, ready: make(chan struct{})}
}

func (c *connection) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// generation numbers the current connection, or the last one while
// disconnected; the first is 1.
func (c *connection) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// run connects and reconnects until ctx is done.
func (c *connection) run(ctx context.Context) error {
	log := c.g.log
	bo := backoff.Backoff{Min: c.g.cfg.ReconnectMin, Max: c.g.cfg.ReconnectMax}
	connects := 0
	for attempt := 1; ; attempt++ {
		log.Info("connecting to the XMPP server", "server", c.g.cfg.Server, "attempt", attempt)
		sess, conn, err := c.dial(ctx)
		if err == nil {
			if connects++; connects > 1 {
				c.g.metrics.reconnect("xmpp")
			}
			attempt = 0
			started := time.Now()
			err = c.serve(ctx, sess, conn)
			if ctx.Err() != nil {
				return nil
			}
			if time.Since(started) > c.g.cfg.ReconnectMax {
				bo.Reset()
			}
			log.Warn("disconnected from the XMPP server", "err", err)
		} else if ctx.Err() != nil {
			return nil
		} else {
			level := slog.LevelWarn
			var se stream.Error
			if errors.As(err, &se) && (se.Err == stream.NotAuthorized.Err || se.Err == stream.HostUnknown.Err) {
				// The server refused the domain or secret: a configuration
				// error that retrying quickly will not fix.
				level = slog.LevelError
				bo.Min = c.g.cfg.ReconnectMax
				bo.Reset()
			}
			log.Log(ctx, level, "cannot connect to the XMPP server", "server", c.g.cfg.Server, "err", err)
		}
		wait := bo.Next()
		log.Info("reconnecting later", "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// dial opens a TCP connection and negotiates the component stream.
func (c *connection) dial(ctx context.Context) (*xmpp.Session, net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(dctx, "tcp", c.g.cfg.Server)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", c.g.cfg.Server, err)
	}
	// The negotiation has no deadline of its own: bound it by closing the
	// connection if the context ends first.
	stop := context.AfterFunc(dctx, func() { conn.Close() })
	sess, err := component.NewSession(dctx, c.g.domain, []byte(c.g.cfg.Secret), conn)
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = dctx.Err()
		}
		return nil, nil, fmt.Errorf("component handshake as %s: %w", c.g.domain, err)
	}
	return sess, conn, nil
}

// serve reads stanzas until the connection fails or ctx is done.
func (c *connection) serve(ctx context.Context, sess *xmpp.Session, conn net.Conn) error {
	lost := make(chan struct{})
	c.mu.Lock()
	c.sess, c.netConn, c.lost = sess, conn, lost
	c.gen++
	close(c.ready)
	c.mu.Unlock()
	c.g.log.Info("connected to the XMPP server", "server", c.g.cfg.Server)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readDone := make(chan struct{}) // closed when the reader below returns
	defer close(readDone)
	go func() {
		<-sctx.Done()
		c.mu.Lock()
		c.sess, c.netConn, c.lost = nil, nil, nil
		c.ready = make(chan struct{})
		c.mu.Unlock()
		close(lost)
		if ctx.Err() != nil {
			// Shutting down: end the stream politely, then let the reader
			// take what the server still sends until it ends its stream
			// too. Closing a socket with unread data resets the connection,
			// and a server that had not yet read our last stanzas loses
			// them (ejabberd did, about 1 shutdown in 4).
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			done := make(chan struct{})
			go func() {
				c.writeMu.Lock()
				defer c.writeMu.Unlock()
				sess.Close()
				close(done)
			}()
			select {
			case <-done:
			case <-closeCtx.Done():
			}
			select {
			case <-readDone:
			case <-closeCtx.Done():
			}
		}
		conn.Close()
	}()
	if c.g.cfg.PingInterval > 0 {
		go c.keepAlive(sctx, cancel)
	}
	c.g.onConnect()

	r := sess.TokenReader()
	defer r.Close()
	d := xml.NewTokenDecoder(r)
	for {
		tok, err := d.Token()
		if se := (stream.Error{}); errors.As(err, &se) {
			// mellium hands the server's stream error over as an error.
			c.g.log.Warn("the XMPP server ended the stream with an error", "condition", se.Err, "text", streamErrorText(se))
			return se
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) && se.Msg == "unexpected EOF" {
				return errors.New("the server closed the connection")
			}
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == nsStream && t.Name.Local == "error" {
				var se stream.Error
				if err := d.DecodeElement(&se, &t); err != nil {
					return err
				}
				c.g.log.Warn("the XMPP server ended the stream with an error", "condition", se.Err, "text", streamErrorText(se))
				return se
			}
			st, err := readStanza(d, t)
			if err != nil {
				return err
			}
			if c.pong(st) {
				continue
			}
			c.g.route(st)
		case xml.EndElement:
			return io.EOF
		}
	}
}

// send writes one stanza, waiting for the connection if it is down. It returns
// once the stanza was written to the server, or with an error.
func (c *connection) send(ctx context.Context, v any) error {
	_, _, err := c.sendOn(ctx, v, new(int))
	return err
}

// sendOn is send that also returns a channel closed when the connection
// the stanza was written on ends, and the stanza's encoded size. losses
// counts the connections that ended under this stanza: a failed write
// adds one, and once there were maxStanzaLosses the stanza is dropped
// (*droppedError) rather than written again.
func (c *connection) sendOn(ctx context.Context, v any, losses *int) (<-chan struct{}, int, error) {
	for {
		c.mu.Lock()
		sess, conn, ready, lost := c.sess, c.netConn, c.ready, c.lost
		c.mu.Unlock()
		if sess == nil {
			if c.closing.Load() {
				return nil, 0, errDisconnected
			}
			select {
			case <-ready:
				continue
			case <-ctx.Done():
				return nil, 0, fmt.Errorf("%w: %w", errDisconnected, ctx.Err())
			}
		}
		size, err := c.write(sess, conn, v)
		if err == nil {
			return lost, size, nil
		}
		if errors.Is(err, errEncode) || undeliverable(err) {
			return nil, size, err // never written: the stream is intact
		}
		// A failed write leaves the stream unusable: drop it and let run
		// reconnect. The stanza is tried again on the new connection,
		// unless connections keep ending under it.
		c.g.log.Warn("writing to the XMPP server failed; reconnecting", "err", err)
		conn.Close()
		if *losses++; *losses >= maxStanzaLosses {
			return nil, size, &droppedError{kind: stanzaKind(v), size: size}
		}
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("%w: %w", errDisconnected, ctx.Err())
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("%w: %w", errDisconnected, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sendConfirmed writes v on connection number gen (see generation) and
// returns once the server has answered a ping written after it. A server
// handles a component's stanzas in order, so by then it has routed v (or
// stored it for an offline user). A stanza merely written can still be
// lost: a server going down discards what it had not read yet.
//
// It never waits for another connection: if gen is not the current one,
// it returns errUnconfirmed, and if the connection ends after v was
// written, before the answer, a *lostError (which is errUnconfirmed too);
// the caller decides when to write v again (the user loop holds it until
// the user's presence was seen on the new connection: see hold.go), and
// drops it once connections ended under it maxStanzaLosses times, since
// the server most likely closed the stream because of it. v may arrive
// twice, under the same id.
func (c *connection) sendConfirmed(ctx context.Context, gen uint64, v any) error {
	c.mu.Lock()
	sess, conn, lost, cur := c.sess, c.netConn, c.lost, c.gen
	c.mu.Unlock()
	if sess == nil || cur != gen {
		return errUnconfirmed
	}
	id, got, ping := c.newSelfPing()
	defer c.pings.Delete(id)
	size, err := c.write(sess, conn, v)
	if err == nil {
		_, err = c.write(sess, conn, ping)
	}
	if err != nil {
		if errors.Is(err, errEncode) || undeliverable(err) {
			return err // never written: the stream is intact
		}
		c.g.log.Warn("writing to the XMPP server failed; reconnecting", "err", err)
		conn.Close()
		return &lostError{kind: stanzaKind(v), size: size, err: err}
	}
	select {
	case <-got:
		return nil
	case <-lost:
		return &lostError{kind: stanzaKind(v), size: size}
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errDisconnected, ctx.Err())
	}
}

// selfPing sends the component a ping through the server: pong closes got
// when the answer comes back, and lost is closed when the connection it
// went out on ends. Once done waiting, the caller forgets the ping with
// c.pings.Delete(id).
func (c *connection) selfPing(ctx context.Context) (id string, got <-chan struct{}, lost <-chan struct{}, err error) {
	id, got, ping := c.newSelfPing()
	lost, _, err = c.sendOn(ctx, ping, new(int))
	return id, got, lost, err
}

// newSelfPing makes a ping of the component's own domain, whose answer
// closes got; see selfPing.
func (c *connection) newSelfPing() (id string, got <-chan struct{}, ping iqOut) {
	id = "self-ping-" + rand.Text() // unguessable: see pong
	answered := make(chan struct{})
	c.pings.Store(id, answered)
	d := c.g.domain.String()
	return id, answered, iqOut{From: d, To: d, ID: id, Type: "get", Payload: pingPayload{}}
}

// write encodes one stanza with a write deadline of our own. mellium ties a
// write to a context by a goroutine that, once the context ends, sets a
// deadline in the past; if that context ends just as the write returns, the
// deadline can land on the next writer's stanza and break the stream. So it
// gets a context that never ends, and writes are serialised here.
//
// No stanza over the configured bound is ever written: encodeBounded cuts
// its text to fit or refuses it with a *tooLargeError, which leaves the
// stream intact. A server closes the whole component stream on a stanza
// over its own limit, for every user of the transport.
//
// The gateway's own stanza types are encoded once into a buffer and written
// in one call (encodeStanza); the writes all hold writeMu, and mellium
// flushes its encoder after each of its own, so nothing interleaves. It
// returns the encoded size.
func (c *connection) write(sess *xmpp.Session, conn net.Conn, v any) (int, error) {
	buf := encodeBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		// A buffer that held an oversized stanza before its cut is not
		// kept for the next one.
		if buf.Cap() <= 2*c.g.cfg.MaxStanzaBytes {
			encodeBuffers.Put(buf)
		}
	}()
	v, direct, err := c.g.encodeBounded(buf, v)
	if err != nil {
		return buf.Len(), err
	}
	size := buf.Len()
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return size, err
	}
	if direct {
		_, err = conn.Write(buf.Bytes())
	} else {
		err = sess.Encode(context.Background(), v)
	}
	if err != nil {
		return size, err
	}
	// The stanza is written. Clearing the deadline fails only once the
	// connection is closed (the server ended it meanwhile): that is no
	// reason to write the stanza again, which sent a stanza the server
	// had closed the stream on a second time.
	if err := conn.SetWriteDeadline(time.Time{}); err != nil {
		conn.Close()
	}
	return size, nil
}

// keepAlive pings the component's own domain through the server and drops
// the connection when no answer comes back in time.
func (c *connection) keepAlive(ctx context.Context, drop context.CancelFunc) {
	t := time.NewTicker(c.g.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, got, _, err := c.selfPing(ctx)
		if err == nil {
			select {
			case <-got:
			case <-ctx.Done():
			case <-time.After(min(2*c.g.cfg.PingInterval, maxPingWait)):
				c.g.log.Warn("the XMPP server did not answer a ping; reconnecting")
				drop()
			}
		}
		c.pings.Delete(id)
	}
}

// pong consumes the answer to a keep-alive ping. Only the component's own
// domain answers it: anyone can send the component an iq result, and one
// with a pending ping's id must not pass for the server's answer (the ids
// are random too, so none can be guessed).
func (c *connection) pong(s *inbound) bool {
	if s.XMLName.Local != "iq" || (s.Type != "result" && s.Type != "error") {
		return false
	}
	if !strings.EqualFold(s.FromRaw, c.g.domain.String()) {
		// Compared as written: this runs on the reader, outside route's
		// recover, so no parsing of remote input here.
		return false
	}
	ch, ok := c.pings.LoadAndDelete(s.ID)
	if ok {
		close(ch.(chan struct{}))
	}
	return ok
}

type pingPayload struct {
	XMLName xml.Name `xml:"urn:xmpp:ping ping"`
}

// streamErrorText returns the texts of a stream error, cut for a log line.
func streamErrorText(se stream.Error) string {
	var b strings.Builder
	for _, t := range se.Text {
		if b.Len() > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(t.Value)
	}
	const maxLogText = 1 << 10
	return cutEscaped(b.String(), maxLogText)
}
