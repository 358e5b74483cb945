package gateway

import (
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

func parse(t *testing.T, raw string) *inbound {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(raw))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	s, err := readStanza(d, tok.(xml.StartElement))
	if err != nil {
		t.Fatalf("readStanza(%s): %v", raw, err)
	}
	return s
}

func TestReadStanza(t *testing.T) {
	s := parse(t, `<message xmlns='jabber:component:accept' from='a@b/c' to='x%y@gw' id='1' type='chat'>`+
		`<body>hi &amp; bye</body><thread>t</thread><active xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	if s.FromRaw != "a@b/c" || s.ToRaw != "x%y@gw" || s.ID != "1" || s.Type != "chat" {
		t.Errorf("envelope: %+v", s)
	}
	if m := s.message(); m.Body != "hi & bye" || m.Thread != "t" {
		t.Errorf("message: %+v", m)
	}
	iq := parse(t, `<iq type='get' id='2'><query xmlns='jabber:iq:register' node='n'/></iq>`)
	if p := iq.payload(); p.Space != nsRegister || p.Local != "query" {
		t.Errorf("payload: %v", p)
	}
	var q struct {
		Node string `xml:"node,attr"`
	}
	if ok, err := iq.decodeChild(xml.Name{Space: nsRegister, Local: "query"}, &q); !ok || err != nil || q.Node != "n" {
		t.Errorf("decodeChild: %v %v %+v", ok, err, q)
	}
	pr := parse(t, `<presence><show> away </show><status>x</status><priority>7</priority></presence>`)
	if p := pr.presence(); p.Show != "away" || p.Status != "x" || p.Priority != 7 {
		t.Errorf("presence: %+v", p)
	}
}

func TestBestPresence(t *testing.T) {
	res := map[string]presenceBody{
		"a": {Show: "away", Priority: 1},
		"b": {Show: "dnd", Priority: 5, Status: "busy"},
		"c": {Show: "", Priority: 5},
	}
	if p := bestPresence(res); !p.Available || p.Show != transports.ShowNone {
		t.Errorf("best of %v = %+v", res, p)
	}
	if p := bestPresence(nil); p.Available {
		t.Errorf("no resources gave %+v", p)
	}
}

func TestCheckValue(t *testing.T) {
	for _, tc := range []struct {
		field transports.Field
		in    string
		want  string
		ok    bool
	}{
		{transports.Field{Name: "n", Required: true}, "", "", false},
		{transports.Field{Name: "n"}, "a\nQUIT", "", false},
		{transports.Field{Name: "n"}, strings.Repeat("x", maxFieldLen+1), "", false},
		{transports.Field{Name: "b", Kind: transports.Bool}, "1", "true", true},
		{transports.Field{Name: "b", Kind: transports.Bool}, "0", "false", true},
		{transports.Field{Name: "b", Kind: transports.Bool}, "maybe", "", false},
		{transports.Field{Name: "l", Kind: transports.List, Options: []transports.Option{{Value: "tls"}}}, "tls", "tls", true},
		{transports.Field{Name: "l", Kind: transports.List, Options: []transports.Option{{Value: "tls"}}}, "plain", "", false},
	} {
		v := tc.in
		err := checkValue(tc.field, &v)
		if (err == nil) != tc.ok || (tc.ok && v != tc.want) {
			t.Errorf("checkValue(%+v, %q) = %q, %v", tc.field, tc.in, v, err)
		}
	}
}

func TestTransportErrorMapping(t *testing.T) {
	for kind, want := range map[transports.ErrorKind]stanza.Condition{
		transports.BadRequest:    stanza.BadRequest,
		transports.BadAddress:    stanza.JIDMalformed,
		transports.NotAuthorized: stanza.NotAuthorized,
		transports.Forbidden:     stanza.Forbidden,
		transports.Unreachable:   stanza.RemoteServerTimeout,
		transports.NotFound:      stanza.ItemNotFound,
		transports.RateLimited:   stanza.PolicyViolation,
		transports.NotConnected:  stanza.RecipientUnavailable,
		transports.Unsupported:   stanza.FeatureNotImplemented,
		transports.Internal:      stanza.InternalServerError,
	} {
		if got := transportError(&transports.Error{Kind: kind, Text: "t"}); got.Condition != want {
			t.Errorf("kind %d maps to %s, want %s", kind, got.Condition, want)
		}
	}
	// Internal details never reach the user.
	e := transportError(errors.New("dial tcp 10.0.0.1: password=hunter2"))
	if strings.Contains(e.Text[""], "hunter2") {
		t.Errorf("internal error text leaked: %q", e.Text[""])
	}
}

func TestAnswersWithError(t *testing.T) {
	for _, tc := range []struct {
		kind, typ string
		want      bool
	}{
		{"iq", "get", true}, {"iq", "result", false}, {"iq", "error", false},
		{"message", "chat", true}, {"message", "error", false},
		{"presence", "", true}, {"presence", "subscribe", true}, {"presence", "unavailable", false},
		{"presence", "unsubscribed", false}, {"presence", "error", false},
	} {
		s := &inbound{XMLName: xml.Name{Local: tc.kind}, Type: tc.typ}
		if got := answersWithError(s); got != tc.want {
			t.Errorf("answersWithError(%s type=%q) = %v", tc.kind, tc.typ, got)
		}
	}
}

// FuzzReadStanza feeds arbitrary stanzas through decoding and the payload
// readers: nothing may panic.
func FuzzReadStanza(f *testing.F) {
	f.Add(`<message from='a@b' to='c%d@gw'><body>x</body></message>`)
	f.Add(`<iq type='set' id='1'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'/></query></iq>`)
	f.Add(`<presence type='subscribe'><show>chat</show></presence>`)
	f.Fuzz(func(t *testing.T, raw string) {
		d := xml.NewDecoder(strings.NewReader(raw))
		tok, err := d.Token()
		if err != nil {
			return
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			return
		}
		s, err := readStanza(d, start)
		if err != nil {
			return
		}
		s.payload()
		s.message()
		s.presence()
		var q registerSubmit
		_, _ = s.decodeChild(xml.Name{Space: nsRegister, Local: "query"}, &q)
	})
}

func TestReplyFromStaysInDomain(t *testing.T) {
	g := &Gateway{}
	var err error
	if g.domain, err = jid.Parse("gw.example.org"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ to, want string }{
		{"alice%x@gw.example.org", "alice%x@gw.example.org"},
		{"gw.example.org", "gw.example.org"},
		{"other.example.org", "gw.example.org"},
		{"", "gw.example.org"},
	} {
		s := &inbound{ToRaw: tc.to}
		s.to, _ = jid.Parse(tc.to)
		if got := g.replyFrom(s); got != tc.want {
			t.Errorf("reply to a stanza for %q comes from %q, want %q", tc.to, got, tc.want)
		}
	}
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

// TestDeliverReturnsWhenSessionCloses: an event already queued on a busy
// loop does not hold the transport once the loop closes that session; the
// loop closing it waits for the transport, so waiting on would deadlock
// until Close's timeout.
func TestDeliverReturnsWhenSessionCloses(t *testing.T) {
	u := &user{mail: newMailbox(), done: make(chan struct{})}
	s := newSink(u)
	errc := make(chan error, 1)
	go func() { errc <- s.Deliver(t.Context(), transports.Message{From: "x", Body: "queued"}) }()
	<-u.mail.ready // queued; the loop is busy closing the session
	s.close()
	select {
	case err := <-errc:
		if !errors.Is(err, errSessionClosed) {
			t.Errorf("Deliver after the session closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver still waits for a loop that closed its session")
	}
}

// TestMailbox: events come out in order, a limit refuses only beyond it, a
// mailbox with waiting events does not close unless forced, and a closed
// one refuses everything.
func TestMailbox(t *testing.T) {
	m := newMailbox()
	for i := range 5 {
		if !m.put(i, 5) {
			t.Fatalf("put %d refused under the limit", i)
		}
	}
	if m.put(5, 5) {
		t.Error("put accepted beyond the limit")
	}
	if !m.put(5, 0) {
		t.Error("an unlimited put was refused")
	}
	if m.close(false) {
		t.Error("closed with events waiting")
	}
	for i := range 6 {
		if ev, ok := m.take(); !ok || ev != i {
			t.Fatalf("take %d: %v, %v", i, ev, ok)
		}
	}
	if _, ok := m.take(); ok {
		t.Error("take from an empty mailbox")
	}
	if !m.close(false) || m.put(7, 0) {
		t.Error("an empty mailbox did not close, or a closed one took an event")
	}
}
