package transporttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"passerelle.dev/passerelle/transports"
)

// errClosed is what the sink answers once the session was closed.
var errClosed = errors.New("transporttest: Deliver after Close returned")

// Sink is a transports.Sink that records the events in order and fails the
// test if any is delivered after the session's Close returned.
type Sink struct {
	mu     sync.Mutex
	events []transports.Event
	closed bool
	late   []string // events delivered after Close, described
	grew   chan struct{}
}

// NewSink returns a recording sink; at the end of t it fails t if an event
// came after Closed.
func NewSink(t *testing.T) *Sink {
	s := &Sink{grew: make(chan struct{})}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, l := range s.late {
			t.Errorf("Deliver after Close returned: %s", l)
		}
		s.late = nil
	})
	return s
}

// Deliver implements transports.Sink. It never blocks.
func (s *Sink) Deliver(_ context.Context, ev transports.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.late = append(s.late, fmt.Sprintf("%T %+v", ev, ev))
		return errClosed
	}
	s.events = append(s.events, ev)
	close(s.grew)
	s.grew = make(chan struct{})
	return nil
}

// Closed records that the session's Close returned: from now on every
// Deliver is a failure.
func (s *Sink) Closed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

// Events returns the events delivered so far, in order.
func (s *Sink) Events() []transports.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]transports.Event(nil), s.events...)
}

// Wait waits up to d for an event that matches, among all the events
// delivered so far and those to come, and fails t without one.
func (s *Sink) Wait(t *testing.T, d time.Duration, what string, match func(transports.Event) bool) transports.Event {
	t.Helper()
	deadline := time.After(d)
	seen := 0
	for {
		s.mu.Lock()
		evs, grew := s.events[seen:], s.grew
		seen = len(s.events)
		s.mu.Unlock()
		for _, ev := range evs {
			if match(ev) {
				return ev
			}
		}
		select {
		case <-grew:
		case <-deadline:
			t.Fatalf("no %s within %v; events: %s", what, d, describe(s.Events()))
			return nil
		}
	}
}

func describe(evs []transports.Event) string {
	out := ""
	for _, ev := range evs {
		out += fmt.Sprintf("\n\t%T %+v", ev, ev)
	}
	return out
}
