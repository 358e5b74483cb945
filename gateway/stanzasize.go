package gateway

import (
	"errors"
	"fmt"
	"sort"

	"passerelle.dev/passerelle/transports/xmltext"
)

// DefaultMaxStanzaBytes bounds every stanza the gateway writes unless the
// config says otherwise: 64 KiB, an eighth of Prosody's component limit
// (512 KiB) and at most a quarter of the c2s and s2s limits a stanza may
// still meet on its way to the user (Prosody 256 KiB c2s, 512 KiB s2s;
// ejabberd's packaged config the same; ejabberd's component listener has
// none by default).
const DefaultMaxStanzaBytes = 64 << 10

// MinMaxStanzaBytes is the smallest bound accepted: room for the envelope,
// a useful start of the text and the notes.
const MinMaxStanzaBytes = 4 << 10

// maxKeptThread is the longest thread id kept when a stanza must shrink; a
// longer one is dropped, since a cut id would name another thread.
const maxKeptThread = 1 << 10

// maxStanzaLosses is how many connections may end under one stanza (while
// it was being written or before the server confirmed it) before it is
// dropped: a stanza the server closes the stream on would otherwise be
// sent again after every reconnection, taking the transport down for all.
const maxStanzaLosses = 2

// lostError is returned by sendConfirmed when the connection ended after
// the stanza was written (or while it was), before the server confirmed
// it. It is errUnconfirmed too.
type lostError struct {
	kind string
	size int
	err  error // the write's, if it failed
}

func (e *lostError) Error() string {
	msg := fmt.Sprintf("gateway: the connection ended under a %s stanza of %d bytes before the server confirmed it", e.kind, e.size)
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *lostError) Is(target error) bool { return target == errUnconfirmed }

func (e *lostError) Unwrap() error { return e.err }

// tooLargeError is returned for a stanza that does not fit the bound even
// after its text was cut. It is never written, and the stream stays up.
type tooLargeError struct {
	kind      string // message, presence, iq
	size, max int    // encoded bytes
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("gateway: a %s stanza of %d bytes is over the %d-byte bound", e.kind, e.size, e.max)
}

// droppedError is returned for a stanza that was written on
// maxStanzaLosses connections that all ended before the server confirmed
// it: the server most likely closed the stream because of it, so it is not
// sent again.
type droppedError struct {
	kind string
	size int
}

func (e *droppedError) Error() string {
	return fmt.Sprintf("gateway: dropped a %s stanza of %d bytes: the connection to the server ended %d times before it was confirmed", e.kind, e.size, maxStanzaLosses)
}

// undeliverable reports whether err means that the stanza will never be
// written: retrying it cannot help.
func undeliverable(err error) bool {
	var tl *tooLargeError
	var de *droppedError
	return errors.As(err, &tl) || errors.As(err, &de)
}

// cutEscaped returns the longest prefix of s, ending on a character
// boundary, whose escaped length is at most limit.
func cutEscaped(s string, limit int) string {
	cut, _ := xmltext.Cut(s, len(s), limit)
	return cut
}

// cutNote is the visible note that ends a cut text.
func cutNote(rest int) string {
	return "\n[cut: " + kb(rest) + " more]"
}

// kb formats a size for users: bytes, KB rounded up, or MB to a tenth.
func kb(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%d KB", (n+1<<10-1)>>10)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

// textField is a text of a stanza that may be cut to make it fit.
type textField struct {
	s *string
	// whole fields (ids) are kept whole or dropped; the others are cut and
	// end with a note.
	whole bool
}

// shrinkFields cuts the fields so that their escaped lengths sum to at
// least over bytes less than before. It shares what is left fairly: short
// fields are kept whole and the longest ones are cut to an equal share.
// It reports whether any field changed.
func shrinkFields(fields []textField, over int) bool {
	if over <= 0 || len(fields) == 0 {
		return false
	}
	lens := make([]int, len(fields))
	total := 0
	for i, f := range fields {
		lens[i] = xmltext.EscapedLen(*f.s)
		total += lens[i]
	}
	// Ids that are too long to be worth keeping go first.
	for i, f := range fields {
		if f.whole && lens[i] > maxKeptThread {
			*f.s = ""
			over -= lens[i]
			total -= lens[i]
			lens[i] = 0
		}
	}
	if over <= 0 {
		return true
	}
	budget := total - over
	order := make([]int, len(fields))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return lens[order[a]] < lens[order[b]] })
	changed := false
	for k, i := range order {
		share := max(budget, 0) / (len(order) - k)
		f := fields[i]
		if lens[i] <= share {
			budget -= lens[i]
			continue
		}
		changed = true
		if f.whole {
			*f.s = ""
			continue
		}
		s := *f.s
		// The note's length grows with the size it states within each of
		// its forms (bytes, KB, MB), and a shorter form may follow a longer.
		room := share - max(xmltext.EscapedLen(cutNote(len(s))), xmltext.EscapedLen(cutNote(min(len(s), 1<<10-1))), xmltext.EscapedLen(cutNote(min(len(s), 1<<20-1))))
		if room < 0 {
			*f.s = ""
			continue
		}
		kept := cutEscaped(s, room)
		*f.s = kept + cutNote(len(s)-len(kept))
		budget -= xmltext.EscapedLen(*f.s)
	}
	return changed
}

// shrinkStanza returns a copy of v whose text fields were cut so that its
// encoding is at least over bytes shorter, and whether it could cut
// anything. Only the gateway's own stanza types carry text to cut.
func shrinkStanza(v any, over int) (any, bool) {
	switch s := v.(type) {
	case messageOut:
		ok := shrinkFields([]textField{{s: &s.Body}, {s: &s.Subject}, {s: &s.Thread, whole: true}}, over)
		return s, ok
	case subjectOut:
		ok := shrinkFields([]textField{{s: &s.Subject}}, over)
		return s, ok
	case presenceOut:
		fields := []textField{{s: &s.Status}}
		if x, isMUC := s.Payload.(mucUser); isMUC {
			x.Items = append([]mucItem(nil), x.Items...)
			for i := range x.Items {
				fields = append(fields, textField{s: &x.Items[i].Reason})
			}
			s.Payload = x
		}
		ok := shrinkFields(fields, over)
		return s, ok
	}
	return v, false
}

// stanzaKind names a stanza for logs.
func stanzaKind(v any) string {
	switch v.(type) {
	case messageOut, subjectOut:
		return "message"
	case presenceOut:
		return "presence"
	case iqOut:
		return "iq"
	}
	return fmt.Sprintf("%T", v)
}
