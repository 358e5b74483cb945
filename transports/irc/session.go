package irc

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	"passerelle.dev/passerelle/transports"
)

// queueSize bounds the commands and network events waiting for a session.
const queueSize = 512

// deliverTimeout bounds one hand-over of an event to the gateway.
const deliverTimeout = 30 * time.Second

var errClosed = transports.Errorf(transports.NotConnected, "the IRC session is closed")

// Session is one user's IRC side: a connection per network in use. One
// goroutine (run) owns all of its state and handles, in order, the user's
// commands, the networks' events and the timers.
type Session struct {
	t      *Transport
	user   string
	values transports.Values
	nicks  map[string]string // nickname per network, overriding the default
	sink   transports.Sink
	log    *slog.Logger

	events chan any
	done   chan struct{} // closed when run has returned
	ctx    context.Context
	cancel context.CancelFunc

	// Owned by run.
	presence transports.Presence
	networks map[string]*network
	watched  map[string]bool // contacts' addresses whose presence the user follows

	saslUnboundTold bool // the user knows their SASL password names no network
}

func newSession(t *Transport, req transports.LoginRequest, nicks map[string]string, log *slog.Logger) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		t:        t,
		user:     req.User,
		values:   req.Values,
		nicks:    nicks,
		sink:     req.Events,
		log:      log,
		events:   make(chan any, queueSize),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		presence: req.Presence,
		networks: make(map[string]*network),
		watched:  make(map[string]bool),
	}
	for _, c := range req.Contacts {
		s.watched[c] = true
	}
	return s
}

// Commands from the gateway, handled by run.
type (
	cmdSend     struct{ m transports.Message }
	cmdPresence struct{ p transports.Presence }
	cmdJoin     struct{ room, nick, password string }
	cmdLeave    struct{ room, reason string }
	cmdNick     struct{ id, room, nick string }
	cmdModerate struct {
		id, room string
		m        transports.Moderation
	}
	cmdWatch struct {
		addr string
		on   bool
	}
	cmdClose struct{}
)

// post queues a command without ever waiting: the caller is the user's
// loop, which the session may itself be waiting on.
func (s *Session) post(cmd any) error {
	select {
	case <-s.done:
		return errClosed
	default:
	}
	select {
	case s.events <- cmd:
		return nil
	default:
		return transports.Errorf(transports.RateLimited, "too many IRC commands waiting; slow down")
	}
}

// Send implements transports.Session.
func (s *Session) Send(_ context.Context, m transports.Message) error {
	if _, err := s.t.parseAddress(m.To); err != nil {
		return err
	}
	if m.Body == "" && m.Subject == "" {
		return nil
	}
	if len(m.Body) > maxBody {
		return transports.Errorf(transports.RateLimited, "the message is too long for IRC (%d bytes at most)", maxBody)
	}
	return s.post(cmdSend{m})
}

// SetPresence implements transports.Session.
func (s *Session) SetPresence(_ context.Context, p transports.Presence) error {
	return s.post(cmdPresence{p})
}

// JoinRoom implements transports.Rooms.
func (s *Session) JoinRoom(_ context.Context, room, nick, password string) error {
	if !validNick(nick) {
		return transports.Errorf(transports.BadAddress, "%q is not a valid IRC nickname", nick)
	}
	if !validKey(password) {
		return transports.Errorf(transports.NotAuthorized, "the channel key may not contain spaces, commas or line breaks")
	}
	return s.post(cmdJoin{room, nick, password})
}

// LeaveRoom implements transports.Rooms.
func (s *Session) LeaveRoom(_ context.Context, room, reason string) error {
	return s.post(cmdLeave{room, reason})
}

// SetNick implements transports.Rooms. The nickname is the network's:
// changing it in one room changes it in all rooms of that network.
func (s *Session) SetNick(_ context.Context, id, room, nick string) error {
	if !validNick(nick) {
		return transports.Errorf(transports.BadRequest, "%q is not a valid IRC nickname", nick)
	}
	return s.post(cmdNick{id, room, nick})
}

// Moderate implements transports.Rooms.
func (s *Session) Moderate(_ context.Context, id, room string, m transports.Moderation) error {
	if !validNick(m.Nick) {
		return transports.Errorf(transports.BadRequest, "%q is not a valid IRC nickname", m.Nick)
	}
	return s.post(cmdModerate{id, room, m})
}

// Watch implements transports.ContactWatcher.
func (s *Session) Watch(_ context.Context, addr string, on bool) error {
	return s.post(cmdWatch{addr, on})
}

// Close implements transports.Session: every connection quits.
func (s *Session) Close(ctx context.Context) error {
	select {
	case s.events <- cmdClose{}:
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		return ctx.Err()
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		return ctx.Err()
	}
}

// run is the session's loop.
func (s *Session) run() {
	defer close(s.done)
	defer s.cancel()
	defer func() {
		for _, n := range s.networks {
			n.shutdown("")
		}
	}()
	s.connectWatched()
	for {
		select {
		case ev := <-s.events:
			if _, ok := ev.(cmdClose); ok {
				s.quitAll()
				return
			}
			s.handleSafely(ev)
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *Session) handleSafely(ev any) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("irc: panic in session loop", "panic", r)
		}
	}()
	switch ev := ev.(type) {
	case cmdSend:
		s.send(ev.m)
	case cmdPresence:
		s.setPresence(ev.p)
	case cmdJoin:
		s.join(ev)
	case cmdLeave:
		s.leave(ev)
	case cmdNick:
		s.changeNick(ev)
	case cmdModerate:
		s.moderate(ev)
	case cmdWatch:
		s.watch(ev)
	case ircEvent:
		if n := s.current(ev.net, ev.gen); n != nil {
			n.handle(ev.ev)
		}
	case wireDropped:
		if n := s.current(ev.net, ev.gen); n != nil {
			n.dropped(ev.reason)
		}
	case connEnded:
		if n := s.current(ev.net, ev.gen); n != nil {
			n.ended(ev.err)
		}
	case reconnectTimer:
		if n := s.current(ev.net, ev.gen); n != nil {
			n.connect()
		}
	case requestTimeout:
		if n := s.networks[ev.net]; n != nil {
			n.expire(ev.id)
		}
	case registerTimeout:
		if n := s.current(ev.net, ev.gen); n != nil && n.state != stateRegistered && n.client != nil {
			s.log.Warn("irc: no welcome from the server in time", "network", n.name)
			n.client.Close()
		}
	case pollTimer:
		if n := s.current(ev.net, ev.gen); n != nil {
			n.poll()
		}
	}
}

// current returns the network if gen is its live connection.
func (s *Session) current(name string, gen int) *network {
	n := s.networks[name]
	if n == nil || n.gen != gen {
		return nil
	}
	return n
}

// quitAll says goodbye on every network, waiting a little for the QUITs to
// leave.
func (s *Session) quitAll() {
	names := make([]string, 0, len(s.networks))
	for name := range s.networks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s.networks[name].shutdown("Passerelle: the user went offline")
	}
}

// deliver hands an event to the gateway. A gateway that no longer takes
// events (the session is being closed) ends the session.
func (s *Session) deliver(ev transports.Event) {
	ctx, cancel := context.WithTimeout(s.ctx, deliverTimeout)
	defer cancel()
	if err := s.sink.Deliver(ctx, ev); err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.log.Warn("irc: event not delivered", "err", err)
	}
}

// after posts ev to the loop after d, unless the session ended.
func (s *Session) after(d time.Duration, ev any) *time.Timer {
	return time.AfterFunc(d, func() {
		select {
		case s.events <- ev:
		case <-s.done:
		}
	})
}

// net returns the network of an address, creating its (not yet connected)
// state on first use.
func (s *Session) net(name string) *network {
	n := s.networks[name]
	if n == nil {
		n = newNetwork(s, name)
		s.networks[name] = n
	}
	return n
}
