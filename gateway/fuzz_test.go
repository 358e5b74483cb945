package gateway_test

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/gwtest"
	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/registry"
)

// FuzzIncomingStanza sends arbitrary stanzas, as an XMPP server would pass
// them on (well-formed, from a user of the server), through the whole
// gateway: the router, the user's loop, the registration and command code
// and the transport. Nothing may panic (the gateway would log it), and the
// component must stay up and answering.
func FuzzIncomingStanza(f *testing.F) {
	seeds := []struct {
		kind             uint8
		typ, to, payload string
	}{
		{0, "chat", "friend%test.example@" + gwDomain, "<body>hi</body>"},
		{0, "chat", gwDomain, "<body>register</body>"},
		{0, "groupchat", "#room%net@" + gwDomain, "<body>x</body><subject>s</subject>"},
		{0, "error", "friend%test.example@" + gwDomain, "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"},
		{1, "", gwDomain, "<show>away</show><status>brb</status>"},
		{1, "subscribe", "friend%test.example@" + gwDomain, ""},
		{1, "", "#room%net@" + gwDomain + "/nick", "<x xmlns='http://jabber.org/protocol/muc'><password>p</password></x>"},
		{1, "unavailable", gwDomain, ""},
		{2, "get", gwDomain, "<query xmlns='jabber:iq:register'/>"},
		{2, "set", gwDomain, "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='username'><value>alice-legacy</value></field><field var='password'><value>legacy-pw</value></field></x></query>"},
		{2, "set", gwDomain, "<query xmlns='jabber:iq:register'><remove/></query>"},
		{2, "set", gwDomain, "<command xmlns='http://jabber.org/protocol/commands' node='register' action='execute'/>"},
		{2, "set", gwDomain, "<command xmlns='http://jabber.org/protocol/commands' node='settings' sessionid='x' action='next'><x xmlns='jabber:x:data' type='submit'/></command>"},
		{2, "get", gwDomain, "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>"},
		{2, "set", gwDomain, "<query xmlns='jabber:iq:gateway'><prompt>a@b%c</prompt></query>"},
		{2, "get", "%%%@" + gwDomain, "<query xmlns='http://jabber.org/protocol/disco#info'/>"},
		{2, "set", "#room%net@" + gwDomain, "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='bob' role='none'/></query>"},
		{2, "result", gwDomain, ""},
	}
	for _, s := range seeds {
		f.Add(s.kind, s.typ, s.to, s.payload)
	}
	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, kind uint8, typ, to, payload string) {
		if !wellFormed(payload) {
			return // the server never passes on malformed XML
		}
		name := []string{"message", "presence", "iq"}[kind%3]
		h.send(t, fmt.Sprintf(`<%s xmlns='jabber:component:accept' from='alice@%s/fuzz' to='%s' type='%s' id='f%d'>%s</%s>`,
			name, serverDomain, escAttr(to), escAttr(typ), h.next(), payload, name))
		h.check(t)
	})
}

func escAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "'", "&apos;")
}

func wellFormed(payload string) bool {
	d := xml.NewDecoder(strings.NewReader("<x>" + payload + "</x>"))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		if _, ok := tok.(xml.ProcInst); ok {
			return false
		}
		if _, ok := tok.(xml.Directive); ok {
			return false
		}
	}
}

// fuzzHarness is a gateway connected to a fake XMPP server on loopback,
// which the fuzz inputs are written through.
type fuzzHarness struct {
	mu      sync.Mutex
	writeMu sync.Mutex
	conn    net.Conn
	logs    *testserver.SyncBuffer
	pongs   chan string
	nextID  int
}

func newFuzzHarness(f *testing.F) *fuzzHarness {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	h := &fuzzHarness{logs: &testserver.SyncBuffer{}, pongs: make(chan string, 64)}
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if err := serveComponentHandshake(c); err != nil {
				c.Close()
				continue
			}
			h.writeMu.Lock()
			h.conn = c
			h.writeMu.Unlock()
			go h.readGateway(c)
			accepted <- c
		}
	}()

	net := testnet.New()
	net.AddAccount("alice-legacy", "legacy-pw", "friend@test.example")
	dir := f.TempDir()
	dbPath := filepath.Join(dir, "p.db")
	store, err := registry.Open(dbPath, registry.Options{})
	if err != nil {
		f.Fatal(err)
	}
	err = store.PutRegistration(context.Background(), registry.Registration{
		User: "alice@" + serverDomain, Transport: gwDomain,
		Fields: map[string]string{"username": "alice-legacy"}, Secrets: map[string]string{"password": "legacy-pw"},
	})
	store.Close()
	if err != nil {
		f.Fatal(err)
	}
	gwtest.Start(f, gwtest.Options{
		Domain: gwDomain, Secret: gwSecret, Server: ln.Addr().String(),
		Transport: net, DBPath: dbPath, Logger: gwtest.Logger(h.logs),
		Allowed: func(d string) bool { return d == serverDomain },
		IsAdmin: func(j string) bool { return j == "alice@"+serverDomain },
	})
	select {
	case <-accepted:
	case <-time.After(wait):
		f.Fatal("the gateway did not connect to the fake server")
	}
	return h
}

// serveComponentHandshake plays the server's side of XEP-0114 and accepts
// any secret.
func serveComponentHandshake(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	d := xml.NewDecoder(bufio.NewReader(c))
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			break
		}
	}
	_, err := io.WriteString(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='`+gwDomain+`' id='fuzz'>`)
	if err != nil {
		return err
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		if ee, ok := tok.(xml.EndElement); ok && ee.Name.Local == "handshake" {
			break
		}
	}
	_, err = io.WriteString(c, `<handshake/>`)
	// The decoder has buffered nothing past the handshake: the gateway waits
	// for our answer before writing more.
	return err
}

// readGateway reads what the gateway writes and passes on the ids of
// answered pings. The gateway's keep-alive pings to itself are routed
// back, as a server does.
func (h *fuzzHarness) readGateway(c net.Conn) {
	d := xml.NewDecoder(c)
	for {
		tok, err := d.Token()
		if err != nil {
			fmt.Fprintf(h.logs, "fake server: reading the gateway: %v\n", err)
			return
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "iq" {
			continue
		}
		var id, typ, to string
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "id":
				id = a.Value
			case "type":
				typ = a.Value
			case "to":
				to = a.Value
			}
		}
		switch {
		case typ == "result" && strings.HasPrefix(id, "ping-"):
			select {
			case h.pongs <- id:
			default: // a stale answer nobody waits for
			}
		case typ == "get" && to == gwDomain:
			h.write(`<iq xmlns='jabber:component:accept' type='get' id='` + escAttr(id) + `' from='` + gwDomain + `' to='` + gwDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
		case typ == "result" && to == gwDomain:
			h.write(`<iq xmlns='jabber:component:accept' type='result' id='` + escAttr(id) + `' from='` + gwDomain + `' to='` + gwDomain + `'/>`)
		}
	}
}

func (h *fuzzHarness) next() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	return h.nextID
}

func (h *fuzzHarness) send(t *testing.T, raw string) {
	t.Helper()
	if err := h.write(raw); err != nil {
		t.Fatalf("writing to the gateway: %v; logs:\n%s", err, gwtest.Tail(h.logs.String(), 4000))
	}
}

// write sends raw XML to the gateway, one writer at a time.
func (h *fuzzHarness) write(raw string) error {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	h.conn.SetWriteDeadline(time.Now().Add(wait))
	_, err := io.WriteString(h.conn, raw)
	return err
}

// check pings the gateway through the stream, then looks in its logs for
// panics and for a stream it dropped for any reason but a keep-alive that
// a starved machine answered late (the ping is then sent again on the new
// connection).
func (h *fuzzHarness) check(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for answered := false; !answered; {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway stopped answering pings; logs:\n%s", gwtest.Tail(h.logs.String(), 4000))
		}
		id := fmt.Sprintf("ping-%d", h.next())
		_ = h.write(`<iq xmlns='jabber:component:accept' type='get' id='` + id + `' from='` + serverDomain + `' to='` + gwDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
		answered = h.awaitPong(id, 3*time.Second)
	}
	logs := h.logs.String()
	if strings.Contains(logs, "panic") {
		t.Fatalf("the gateway panicked:\n%s", gwtest.Tail(logs, 4000))
	}
	if drops, slow := strings.Count(logs, "disconnected from the XMPP server"), strings.Count(logs, "did not answer a ping"); drops > slow {
		t.Fatalf("the gateway dropped its stream:\n%s", gwtest.Tail(logs, 4000))
	}
}

func (h *fuzzHarness) awaitPong(id string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case got := <-h.pongs:
			if got == id {
				return true
			}
		case <-timeout:
			return false
		}
	}
}
