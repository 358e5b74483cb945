package testnet

import (
	"context"
	"strings"
	"sync"

	"passerelle.dev/passerelle/transports"
)

// Session is one user's session on the test network. Its events are
// delivered from its own goroutine, as a real transport's would be.
type Session struct {
	net    *Network
	user   string
	values transports.Values
	events transports.Sink
	state  transports.State
	wake   chan struct{} // signalled when queue grows

	mu       sync.Mutex
	presence transports.Presence
	queue    []transports.Event // in order; never blocks the sender

	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

func (s *Session) deliver() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		var ev transports.Event
		if len(s.queue) > 0 {
			ev, s.queue = s.queue[0], s.queue[1:]
		}
		s.mu.Unlock()
		if ev == nil {
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			}
		}
		if err := s.events.Deliver(context.Background(), ev); err != nil {
			return
		}
	}
}

// Inject makes the legacy network send ev to the user. It never blocks, and
// events arrive in the order they were injected.
func (s *Session) Inject(ev transports.Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Presence returns the user's presence as the legacy network sees it.
func (s *Session) Presence() transports.Presence {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}

// State returns the session's persistent state store.
func (s *Session) State() transports.State { return s.state }

// Send implements transports.Session; after Close it fails. A message to "nobody@…" fails at once,
// one to "bounce@…" fails later with a SendFailure, one to "slow@…" hangs
// until its context ends, one to "panic@…" panics; with echo on, other
// messages come back from the contact they were sent to.
func (s *Session) Send(ctx context.Context, m transports.Message) error {
	select {
	case <-s.stop:
		return &transports.Error{Kind: transports.NotConnected, Text: "the test network session is closed"}
	default:
	}
	switch {
	case strings.HasPrefix(m.To, "slow@"):
		// A legacy server that never answers: only the context ends it.
		<-ctx.Done()
		return &transports.Error{Kind: transports.Unreachable, Text: "the test network did not answer", Err: ctx.Err()}
	case strings.HasPrefix(m.To, "panic@"):
		panic("testnet: panic requested by a message to " + m.To)
	}
	if strings.HasPrefix(m.To, "nobody@") {
		return &transports.Error{Kind: transports.NotFound, Text: "no such user: " + m.To}
	}
	s.net.record(m)
	if strings.HasPrefix(m.To, "bounce@") {
		s.Inject(transports.SendFailure{To: m.To, ID: m.ID, Err: &transports.Error{Kind: transports.NotFound, Text: "bounced"}})
		return nil
	}
	if s.values["echo"] == "true" {
		reply := transports.Message{From: m.To, Type: transports.Chat, Body: "echo: " + m.Body, Subject: m.Subject, Thread: m.Thread}
		s.Inject(reply)
	}
	return nil
}

// SetPresence implements transports.Session.
func (s *Session) SetPresence(ctx context.Context, p transports.Presence) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presence = p
	return nil
}

// Close implements transports.Session.
func (s *Session) Close(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.net.forget(s)
	select {
	case <-s.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DeliverNow hands ev to the gateway at once and returns once the gateway
// has written to the XMPP server what it makes of it. Use it when no
// injected event is still queued, or the order is lost.
func (s *Session) DeliverNow(ctx context.Context, ev transports.Event) error {
	return s.events.Deliver(ctx, ev)
}
