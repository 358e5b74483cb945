package gateway

import "sync"

// maxQueuedStanzas bounds the stanzas waiting for one user's loop; beyond
// it the router answers resource-constraint instead of queueing.
const maxQueuedStanzas = 10000

// mailbox is a user loop's queue of events, in arrival order. Unlike a
// buffered channel it costs nothing while empty and grows with a burst, so
// that a busy user's stanzas wait instead of being refused, and thousands
// of quiet users do not each hold a burst-sized buffer. Putting never
// blocks. Once closed (the loop has ended) it refuses everything, so that a
// producer learns that nobody will handle its event.
type mailbox struct {
	mu     sync.Mutex
	queue  []event
	closed bool
	ready  chan struct{} // holds a token while events may be waiting
}

func newMailbox() *mailbox { return &mailbox{ready: make(chan struct{}, 1)} }

// put appends ev and reports whether it was queued: not when the mailbox is
// closed, nor when limit > 0 events wait already.
func (m *mailbox) put(ev event, limit int) bool {
	m.mu.Lock()
	if m.closed || (limit > 0 && len(m.queue) >= limit) {
		m.mu.Unlock()
		return false
	}
	m.queue = append(m.queue, ev)
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
	ev := m.queue[0]
	m.queue[0] = nil
	m.queue = m.queue[1:]
	if len(m.queue) == 0 {
		m.queue = nil // give a burst's memory back
	}
	return ev, true
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
	return true
}
