package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// event is anything a user loop handles.
type event interface{}

// stanzaEvent is a stanza from the user; legacy is the decoded legacy address
// it was sent to ("" for the transport domain), to the kind of that address.
type stanzaEvent struct {
	s      *inbound
	legacy string
	to     target
}

// legacyEvent is an event from the user's legacy session.
type legacyEvent struct {
	ev   transports.Event
	at   time.Time // when the transport delivered it
	sink *sink
	ctx  context.Context // the Deliver call's
	done chan error
	// losses counts the connections that ended under the message before
	// the server confirmed it (see dropLost).
	losses int
}

// registerDone reports the end of an asynchronous Register.
type registerDone struct {
	reply  func(*stanza.Error)
	values transports.Values
	err    error
}

// reconnected tells the loop that the component connection number gen
// came up.
type reconnected struct{ gen uint64 }

// wakeUp logs in a registered user of an always-on transport.
type wakeUp struct{}

// runsExpired wakes the loop when command runs may have expired, so that
// an otherwise idle loop can end.
type runsExpired struct{}

// user is one XMPP user's state on one transport. Only the goroutine running
// run touches the fields below the channels; each concern keeps its state in
// its own type, in the file named for it.
type user struct {
	g      *Gateway
	jid    jid.JID // bare
	log    *slog.Logger
	mail   *mailbox      // every event the loop handles, in order
	quit   chan struct{} // closed to ask the loop to log out and stop
	done   chan struct{} // closed when the loop has stopped
	ctx    context.Context
	cancel context.CancelFunc

	reg      *registry.Registration // nil when not registered
	inFlight int                    // asynchronous operations whose result is due

	session   session   // the legacy session's life: session.go
	resources resources // the user's XMPP resources: presence.go
	contacts  contacts  // legacy contacts: contacts.go
	rooms     rooms     // group chats: rooms.go
	commands  commands  // command runs: commands.go
	holding   holding   // messages held over a reconnection: hold.go

	snap atomic.Pointer[userSnap] // for other goroutines: see publish
}

func newUser(g *Gateway, bare jid.JID) *user {
	ctx, cancel := context.WithCancel(context.Background())
	mail := newMailbox()
	mail.maxBytes = g.cfg.QueueBytes
	return &user{
		g:         g,
		jid:       bare,
		log:       g.log.With("user", bare.String()),
		mail:      mail,
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		resources: newResources(),
		contacts:  contacts{last: make(map[string]transports.Presence)},
		rooms:     newRooms(),
		commands:  commands{runs: make(map[string]*cmdRun)},
		holding:   holding{gen: g.conn.generation()},
	}
}

// stop asks the loop to log out and end. The caller holds g.mu.
func (u *user) stop() {
	select {
	case <-u.quit:
	default:
		close(u.quit)
	}
}

// run is the user's loop: it handles every event in order until the user is
// idle or the gateway stops.
func (u *user) run() {
	defer u.g.wg.Done()
	defer u.cancel()
	defer u.stopRunSweep()
	func() {
		defer func() { _ = recovered(u.log, "loading the user's state", recover()) }()
		u.loadRegistration()
		u.loadRooms()
	}()
	for {
		select {
		case <-u.mail.ready:
		case <-u.quit:
			u.shutdown()
			return
		}
		for {
			ev, ok := u.mail.take()
			if !ok {
				break
			}
			u.handleSafely(ev)
			u.publish()
			select {
			case <-u.quit:
				u.shutdown()
				return
			default:
			}
			if u.idle() && u.exit(false) {
				return
			}
		}
	}
}

// shutdown logs out and ends the loop as the gateway stops.
func (u *user) shutdown() {
	u.logout("The gateway is shutting down.")
	u.exit(true)
}

// post queues an event from another goroutine of the user's (a timer, a
// login, a registration); it reports false once the loop has ended, when
// nobody will handle it.
func (u *user) post(ev event) bool { return u.mail.put(ev, 0) }

// exit removes the loop from the gateway unless events are waiting (or
// force is set), and reports whether it did.
func (u *user) exit(force bool) bool {
	u.g.mu.Lock()
	defer u.g.mu.Unlock()
	if !u.mail.close(force) {
		return false
	}
	if u.g.users[u.jid.String()] == u {
		delete(u.g.users, u.jid.String())
	}
	close(u.done)
	return true
}

func (u *user) idle() bool {
	u.expireRuns()
	return !u.wantSession() && u.session.sess == nil && !u.session.loggingIn && u.inFlight == 0 && len(u.commands.runs) == 0
}

// wantSession reports whether the user needs a legacy session: a resource
// is online or in a room, or the transport keeps registered users logged
// in; never once the access lists no longer allow the user's domain.
func (u *user) wantSession() bool {
	return (len(u.resources.online) > 0 || len(u.rooms.joined) > 0 || (u.g.info.AlwaysOn && u.reg != nil)) && u.g.allowed(u.jid.Domainpart())
}

// handleSafely handles one event; a panic is logged and costs this event
// only, never the loop or other users.
func (u *user) handleSafely(ev event) {
	defer func() {
		if err := recovered(u.log, "the user loop", recover()); err != nil {
			switch ev := ev.(type) {
			case legacyEvent:
				ev.done <- err
			case stanzaEvent:
				u.g.replyError(ev.s, transportError(errors.New("panic")))
			}
		}
	}()
	switch ev := ev.(type) {
	case stanzaEvent:
		u.handleStanza(ev)
	case legacyEvent:
		u.handleLegacy(ev)
	case loginDone:
		u.inFlight--
		u.loginFinished(ev)
	case registerDone:
		u.inFlight--
		u.registerFinished(ev)
	case reconnected:
		u.reconnectedTo(ev.gen)
	case confirmResources:
		u.dropUnconfirmed(ev)
	case leaveCheck:
		u.checkLeave(ev)
	case adminAction:
		u.adminAction(ev)
	case announceEv:
		u.announced(ev)
	case accessChanged:
		u.checkAccess()
	case wakeUp:
		if u.reg != nil && u.wantSession() && u.session.sess == nil && !u.session.loggingIn && u.session.retry == nil {
			u.login()
		}
	case runsExpired:
		u.sweepRuns()
	case retryLogin:
		u.session.retry = nil
		if u.reg != nil && u.wantSession() && u.session.sess == nil && !u.session.loggingIn {
			u.login()
		}
	}
}

// handleStanza hands a stanza from the user to the loop row of the routing
// table that takes it; an iq request no row takes gets service-unavailable,
// anything else is dropped.
func (u *user) handleStanza(ev stanzaEvent) {
	if r := u.g.loopRoute(ev); r != nil {
		r.handle(u, ev)
		return
	}
	if ev.s.isRequest() {
		u.g.replyError(ev.s, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, ""))
	}
}

func (u *user) loadRegistration() {
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	r, err := u.g.cfg.Store.Registration(ctx, u.jid.String(), u.g.domain.String())
	switch {
	case err == nil:
		u.reg = &r
	case !errors.Is(err, registry.ErrNotFound):
		u.log.Error("cannot read registration", "err", err)
	}
}

// send writes a stanza to the XMPP server, bounded in time.
func (u *user) send(v any) error {
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	err := u.g.conn.send(ctx, v)
	if err != nil && u.handleUndeliverable(v, err) {
		return nil
	}
	if err != nil {
		u.log.Warn("cannot send a stanza", "err", err)
	}
	return err
}

// sendConfirmed writes a stanza on the connection the loop last saw come
// up and waits until the server has taken it, bounded in time; see
// connection.sendConfirmed.
func (u *user) sendConfirmed(v any) error {
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	err := u.g.conn.sendConfirmed(ctx, u.holding.gen, v)
	if err != nil && u.handleUndeliverable(v, err) {
		return nil
	}
	if err != nil && !errors.Is(err, errUnconfirmed) {
		u.log.Warn("cannot send a stanza", "err", err)
	}
	return err
}
