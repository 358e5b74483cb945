package gateway

import (
	"encoding/xml"
	"sync"
)

// maxQueuedStanzas bounds the stanzas waiting for one user's loop; beyond
// it the router answers resource-constraint instead of queueing.
const maxQueuedStanzas = 10000

// defaultQueueBytes is the default of Config.QueueBytes.
const defaultQueueBytes = 16 << 20

// mailbox is a user loop's queue of events, in arrival order. Unlike a
// buffered channel it costs nothing while empty and grows with a burst, so
// that a busy user's stanzas wait instead of being refused, and thousands
// of quiet users do not each hold a burst-sized buffer. Putting never
// blocks. Once closed (the loop has ended) it refuses everything, so that a
// producer learns that nobody will handle its event.
type mailbox struct {
	mu    sync.Mutex
	queue []queued
	bytes int // queuedSize of the events waiting
	// maxBytes bounds bytes for puts with a limit (0: no bound); see put.
	maxBytes int
	closed   bool
	ready    chan struct{} // holds a token while events may be waiting
}

type queued struct {
	ev   event
	size int
}

func newMailbox() *mailbox { return &mailbox{ready: make(chan struct{}, 1)} }

// put appends ev and reports whether it was queued: not when the mailbox is
// closed, nor, when limit > 0, if limit events wait already or ev would
// take the bytes waiting past maxBytes. Internal events (limit 0) are
// always taken while open.
func (m *mailbox) put(ev event, limit int) bool {
	size := queuedSize(ev)
	m.mu.Lock()
	if m.closed || (limit > 0 && (len(m.queue) >= limit || (m.maxBytes > 0 && m.bytes+size > m.maxBytes))) {
		m.mu.Unlock()
		return false
	}
	m.queue = append(m.queue, queued{ev, size})
	m.bytes += size
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
	return true
}

// take removes the oldest event.
func (m *mailbox) take() (event, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue) == 0 {
		return nil, false
	}
	q := m.queue[0]
	m.queue[0] = queued{}
	m.queue = m.queue[1:]
	m.bytes -= q.size
	if len(m.queue) == 0 {
		m.queue = nil // give a burst's memory back
	}
	return q.ev, true
}

// close closes the mailbox unless events wait and force is false; it
// reports whether it closed it.
func (m *mailbox) close(force bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !force && len(m.queue) > 0 {
		return false
	}
	m.closed = true
	m.queue = nil
	m.bytes = 0
	return true
}

// tokenOverhead approximates what one kept token costs beyond its text
// (the interface, the slice or struct header, the allocation).
const tokenOverhead = 64

// queuedSize estimates the memory an event holds while it waits: a
// stanza's envelope and every token of its payload. Other events are
// the gateway's own and small.
func queuedSize(ev event) int {
	se, ok := ev.(stanzaEvent)
	if !ok || se.s == nil {
		return 0
	}
	s := se.s
	n := 256 + len(s.FromRaw) + len(s.ToRaw) + len(s.ID) + len(s.Type) + len(se.legacy)
	for _, tok := range s.inner {
		n += tokenOverhead
		switch t := tok.(type) {
		case xml.StartElement:
			n += len(t.Name.Space) + len(t.Name.Local)
			for _, a := range t.Attr {
				n += tokenOverhead + len(a.Name.Space) + len(a.Name.Local) + len(a.Value)
			}
		case xml.EndElement:
			n += len(t.Name.Space) + len(t.Name.Local)
		case xml.CharData:
			n += len(t)
		case xml.Comment:
			n += len(t)
		case xml.ProcInst:
			n += len(t.Target) + len(t.Inst)
		case xml.Directive:
			n += len(t)
		}
	}
	return n
}
