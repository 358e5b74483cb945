package xmpptest

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// Stanza is a received stanza: its envelope and its payload as raw XML.
type Stanza struct {
	XMLName xml.Name
	From    string `xml:"from,attr"`
	To      string `xml:"to,attr"`
	ID      string `xml:"id,attr"`
	Type    string `xml:"type,attr"`
	Inner   string `xml:",innerxml"`
}

// readStanza reads the rest of the element start opened. The payload is
// rendered back to text, since ",innerxml" is empty on a token stream.
func readStanza(d *xml.Decoder, start xml.StartElement) (*Stanza, error) {
	s := &Stanza{XMLName: start.Name}
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "from":
			s.From = a.Value
		case "to":
			s.To = a.Value
		case "id":
			s.ID = a.Value
		case "type":
			s.Type = a.Value
		}
	}
	var b strings.Builder
	spaces := []string{start.Name.Space}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			b.WriteString("<" + t.Name.Local)
			if t.Name.Space != spaces[len(spaces)-1] {
				b.WriteString(` xmlns="`)
				_ = xml.EscapeText(&b, []byte(t.Name.Space))
				b.WriteString(`"`)
			}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				if a.Name.Space == "http://www.w3.org/XML/1998/namespace" {
					b.WriteString(" xml:")
				} else {
					b.WriteString(" ")
				}
				b.WriteString(a.Name.Local + `="`)
				_ = xml.EscapeText(&b, []byte(a.Value))
				b.WriteString(`"`)
			}
			b.WriteString(">")
			spaces = append(spaces, t.Name.Space)
		case xml.EndElement:
			if len(spaces) == 1 {
				s.Inner = b.String()
				return s, nil
			}
			spaces = spaces[:len(spaces)-1]
			b.WriteString("</" + t.Name.Local + ">")
		case xml.CharData:
			_ = xml.EscapeText(&b, t)
		}
	}
}

// node is a generic element for looking into Inner.
type node struct {
	XMLName xml.Name
	Text    string `xml:",chardata"`
	Nodes   []node `xml:",any"`
}

func (s *Stanza) children() []node {
	var root node
	_ = xml.Unmarshal([]byte("<r>"+s.Inner+"</r>"), &root)
	return root.Nodes
}

// Has reports whether the stanza has a direct child with that name; an empty
// space matches any namespace.
func (s *Stanza) Has(space, local string) bool {
	_, ok := s.child(space, local)
	return ok
}

func (s *Stanza) child(space, local string) (node, bool) {
	for _, n := range s.children() {
		if n.XMLName.Local == local && (space == "" || n.XMLName.Space == space || (n.XMLName.Space == "" && space == "jabber:client")) {
			return n, true
		}
	}
	return node{}, false
}

// Text returns the character data of a direct child, such as a body.
func (s *Stanza) Text(space, local string) string {
	n, _ := s.child(space, local)
	return n.Text
}

// ErrorCondition returns the defined condition of a stanza error, or "".
func (s *Stanza) ErrorCondition() string {
	e, ok := s.child("", "error")
	if !ok {
		return ""
	}
	for _, n := range e.Nodes {
		if n.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && n.XMLName.Local != "text" {
			return n.XMLName.Local
		}
	}
	return ""
}

// String shows the stanza for failure messages.
func (s *Stanza) String() string {
	return fmt.Sprintf("<%s from=%q to=%q id=%q type=%q>%s</%s>", s.XMLName.Local, s.From, s.To, s.ID, s.Type, strings.TrimSpace(s.Inner), s.XMLName.Local)
}

// IQID matches the answer to the iq with that id.
func IQID(id string) func(*Stanza) bool {
	return func(s *Stanza) bool { return s.XMLName.Local == "iq" && s.ID == id }
}

// From matches any stanza from j.
func From(j string) func(*Stanza) bool {
	return func(s *Stanza) bool { return strings.EqualFold(s.From, j) }
}

// MessageFrom matches a message from j.
func MessageFrom(j string) func(*Stanza) bool {
	return func(s *Stanza) bool { return s.XMLName.Local == "message" && strings.EqualFold(s.From, j) }
}

// PresenceFrom matches a presence of the given type ("" for available) from
// j, a bare or full JID.
func PresenceFrom(j, typ string) func(*Stanza) bool {
	return func(s *Stanza) bool {
		return s.XMLName.Local == "presence" && s.Type == typ && strings.EqualFold(s.From, j)
	}
}

// And matches when every matcher does.
func And(ms ...func(*Stanza) bool) func(*Stanza) bool {
	return func(s *Stanza) bool {
		for _, m := range ms {
			if !m(s) {
				return false
			}
		}
		return true
	}
}
