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
// test if any is delivered, or still being delivered, after the session's
// Close returned.
type Sink struct {
	// Delay is how long each Deliver takes, as a gateway's does while it
	// writes the stanzas (or less if its context ends first). Set it
	// before the session starts.
	Delay time.Duration

	mu       sync.Mutex
	events   []transports.Event
	closed   bool
	inFlight map[*transports.Event]bool // the Delivers under way
	late     []string                   // events delivered after Close, described
	grew     chan struct{}
}

// NewSink returns a recording sink; at the end of t it fails t if an event
// came after Closed.
func NewSink(t *testing.T) *Sink {
	s := &Sink{grew: make(chan struct{}), inFlight: make(map[*transports.Event]bool)}
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

// Deliver implements transports.Sink. It records ev, then takes Delay.
func (s *Sink) Deliver(ctx context.Context, ev transports.Event) error {
	s.mu.Lock()
	if s.closed {
		s.late = append(s.late, fmt.Sprintf("%T %+v", ev, ev))
		s.mu.Unlock()
		return errClosed
	}
	key := &ev
	s.inFlight[key] = true
	s.events = append(s.events, ev)
	close(s.grew)
	s.grew = make(chan struct{})
	s.mu.Unlock()

	var err error
	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	s.mu.Lock()
	delete(s.inFlight, key)
	s.mu.Unlock()
	return err
}

// Closed records that the session's Close returned: a Deliver still under
// way, or any later one, is a failure.
func (s *Sink) Closed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ev := range s.inFlight {
		s.late = append(s.late, fmt.Sprintf("(still being delivered) %T %+v", *ev, *ev))
	}
	clear(s.inFlight)
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
