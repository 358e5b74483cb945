package gateway

import (
	"bytes"
	"encoding/xml"
	"fmt"
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
	case subjectOut:
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

// encodeBounded encodes v into buf as encodeStanza does and makes it fit
// the gateway's stanza bound: a stanza over it has its text fields cut (on
// character boundaries, each ending with a note saying how much is
// missing) and is encoded again. It returns the stanza to write, which may
// be the cut copy, and whether buf holds it; a stanza that still does not
// fit is a *tooLargeError and must not be written.
func (g *Gateway) encodeBounded(buf *bytes.Buffer, v any) (any, bool, error) {
	direct, err := g.encodeMeasured(buf, v)
	if err != nil {
		return v, false, err
	}
	limit := g.cfg.MaxStanzaBytes
	if !direct {
		limit -= melliumSlack
	}
	size := buf.Len()
	if size <= limit {
		return v, direct, nil
	}
	if cut, ok := shrinkStanza(v, size-limit); ok {
		buf.Reset()
		direct, err = g.encodeMeasured(buf, cut)
		if err != nil {
			return v, false, err
		}
		if buf.Len() <= limit {
			g.log.Info("cut a stanza to fit the bound", "kind", stanzaKind(v), "bytes", size, "cut_to", buf.Len(), "max", limit)
			g.metrics.limit("stanza_cut")
			return cut, direct, nil
		}
	}
	g.metrics.limit("stanza_too_large")
	return v, false, &tooLargeError{kind: stanzaKind(v), size: size, max: limit}
}

// melliumSlack is kept free under the bound for what mellium adds (an id,
// the stream namespace) to a stanza it encodes itself.
const melliumSlack = 256

// encodeMeasured encodes v into buf, directly if encodeStanza can, else as
// a measure of what mellium will write.
func (g *Gateway) encodeMeasured(buf *bytes.Buffer, v any) (bool, error) {
	direct, err := g.encodeStanza(buf, v)
	if err == nil && !direct {
		err = xml.NewEncoder(buf).Encode(v)
	}
	if err != nil {
		return false, fmt.Errorf("%w %T: %w", errEncode, v, err)
	}
	return direct, nil
}
