package gateway

import (
	"bytes"
	"encoding/xml"
	"sync"
)

// encodeBuffers holds the buffers stanzas are encoded into before the write.
var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeStanza writes the XML of the gateway's own stanza types to buf and
// reports whether it did. mellium's Session.Encode marshals a value, parses
// the result back into tokens and encodes them again, which was most of the
// gateway's CPU time per message; these types are encoded once, exactly as
// mellium would write them: in the stream's default namespace, with a
// from, and with an id (a random one if the stanza has none). Anything else
// (a stanza without a from, another type) is left to mellium.
func (g *Gateway) encodeStanza(buf *bytes.Buffer, v any) (bool, error) {
	switch s := v.(type) {
	case messageOut:
		if s.From == "" {
			return false, nil
		}
		if s.ID == "" {
			s.ID = g.newID()
		}
		v = s
	case presenceOut:
		if s.From == "" {
			return false, nil
		}
		if s.ID == "" {
			s.ID = g.newID()
		}
		v = s
	case iqOut:
		if s.From == "" || s.ID == "" {
			return false, nil
		}
	default:
		return false, nil
	}
	if err := xml.NewEncoder(buf).Encode(v); err != nil {
		return false, err
	}
	return true, nil
}
