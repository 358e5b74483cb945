package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"io"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Namespaces the gateway speaks.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsPing       = "urn:xmpp:ping"
	nsVersion    = "jabber:iq:version"
	nsRegister   = "jabber:iq:register"
	nsGateway    = "jabber:iq:gateway"
	nsDataForms  = "jabber:x:data"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// inbound is one stanza as it arrived: its envelope parsed, its payload kept
// as tokens for the handler that needs it.
type inbound struct {
	XMLName xml.Name
	FromRaw string
	ToRaw   string
	ID      string
	Type    string
	inner   []xml.Token
	at      time.Time // when it was read

	from, to jid.JID
}

// readStanza reads the rest of the element that start opened from d.
func readStanza(d xml.TokenReader, start xml.StartElement) (*inbound, error) {
	s := &inbound{XMLName: start.Name, at: time.Now()}
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "from":
			s.FromRaw = a.Value
		case "to":
			s.ToRaw = a.Value
		case "id":
			s.ID = a.Value
		case "type":
			s.Type = a.Value
		}
	}
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth == 0 {
				return s, nil
			}
			depth--
		}
		s.inner = append(s.inner, xml.CopyToken(tok))
	}
}

// tokenSlice reads tokens from a slice.
type tokenSlice []xml.Token

func (t *tokenSlice) Token() (xml.Token, error) {
	if len(*t) == 0 {
		return nil, io.EOF
	}
	tok := (*t)[0]
	*t = (*t)[1:]
	return tok, nil
}

// children returns a decoder over the stanza's payload.
func (s *inbound) children() *xml.Decoder {
	ts := tokenSlice(s.inner)
	return xml.NewTokenDecoder(&ts)
}

// payload returns the name of the first child element, for routing iqs.
func (s *inbound) payload() xml.Name {
	for _, tok := range s.inner {
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name
		}
	}
	return xml.Name{}
}

// decodeChild decodes the first direct child named name into v and reports
// whether there was one. An empty name.Space matches any namespace.
func (s *inbound) decodeChild(name xml.Name, v any) (bool, error) {
	d := s.children()
	for {
		tok, err := d.Token()
		if err != nil {
			return false, nil
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name == name || (name.Space == "" && se.Name.Local == name.Local) {
			return true, d.DecodeElement(v, &se)
		}
		if err := d.Skip(); err != nil {
			return false, err
		}
	}
}

// decodeAll decodes the stanza's direct children into the fields of v, a
// pointer to a struct with element tags.
func (s *inbound) decodeAll(v any) {
	ts := tokenSlice(append(append([]xml.Token{xml.StartElement{Name: xml.Name{Local: "x"}}}, s.inner...), xml.EndElement{Name: xml.Name{Local: "x"}}))
	// A payload we cannot read leaves v as it was: nothing to translate.
	_ = xml.NewTokenDecoder(&ts).Decode(v)
}

// isRequest reports whether the stanza expects an answer: an iq get or set.
func (s *inbound) isRequest() bool {
	return s.XMLName.Local == "iq" && (s.Type == "get" || s.Type == "set")
}

// messageBody is the part of a message the gateway translates.
type messageBody struct {
	Body    string `xml:"body"`
	Subject string `xml:"subject"`
	Thread  string `xml:"thread"`
}

func (s *inbound) message() messageBody {
	var m messageBody
	s.decodeAll(&m)
	return m
}

// presenceBody is the part of a presence the gateway reads.
type presenceBody struct {
	Show     string `xml:"show"`
	Status   string `xml:"status"`
	Priority int    `xml:"priority"`
}

func (s *inbound) presence() presenceBody {
	var p presenceBody
	s.decodeAll(&p)
	p.Show = strings.TrimSpace(p.Show)
	return p
}

// Outbound stanzas. Every one carries an explicit from in the component's
// domain: ejabberd closes the component stream on any stanza without one.

type iqOut struct {
	XMLName xml.Name `xml:"iq"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	ID      string   `xml:"id,attr"`
	Type    string   `xml:"type,attr"`
	Payload any
}

type messageOut struct {
	XMLName xml.Name `xml:"message"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	ID      string   `xml:"id,attr,omitempty"`
	Type    string   `xml:"type,attr,omitempty"`
	Subject string   `xml:"subject,omitempty"`
	Body    string   `xml:"body,omitempty"`
	Thread  string   `xml:"thread,omitempty"`
	Payload any
}

type presenceOut struct {
	XMLName xml.Name `xml:"presence"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	ID      string   `xml:"id,attr,omitempty"`
	Type    string   `xml:"type,attr,omitempty"`
	Show    string   `xml:"show,omitempty"`
	Status  string   `xml:"status,omitempty"`
	Payload any
}

// errorReply builds the error answer to s, from the given address. The
// original payload is not echoed back.
func errorReply(s *inbound, from string, e stanza.Error) any {
	switch s.XMLName.Local {
	case "iq":
		return iqOut{From: from, To: s.FromRaw, ID: s.ID, Type: "error", Payload: e}
	case "message":
		return messageOut{From: from, To: s.FromRaw, ID: s.ID, Type: "error", Payload: e}
	default:
		return presenceOut{From: from, To: s.FromRaw, ID: s.ID, Type: "error", Payload: e}
	}
}

// answersWithError reports whether an error may be sent back for s: never for
// errors, results, or unavailable presence, so that two gateways cannot loop.
func answersWithError(s *inbound) bool {
	switch s.Type {
	case "error", "result", "unavailable", "unsubscribed", "unsubscribe":
		return false
	}
	return s.XMLName.Local != "presence" || s.Type == "subscribe" || s.Type == "probe" || s.Type == ""
}

func stanzaErr(typ stanza.ErrorType, cond stanza.Condition, text string) stanza.Error {
	e := stanza.Error{Type: typ, Condition: cond}
	if text != "" {
		e.Text = map[string]string{"": text}
	}
	return e
}

// newID returns a fresh stanza id.
func (g *Gateway) newID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
