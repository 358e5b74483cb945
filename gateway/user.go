package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

const (
	loginTimeout  = 2 * time.Minute
	closeTimeout  = 10 * time.Second
	maxPending    = 100
	maxLoginRetry = 10 * time.Minute
)

var errSessionClosed = errors.New("gateway: legacy session closed")

// event is anything a user loop handles.
type event interface{}

// stanzaEvent is a stanza from the user; legacy is the decoded legacy address
// it was sent to ("" for the transport domain), room tells whether that
// address is a group chat.
type stanzaEvent struct {
	s      *inbound
	legacy string
	room   bool
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

// loginDone reports the end of an asynchronous Login.
type loginDone struct {
	sess transports.Session
	sink *sink
	err  error
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

// retryLogin is the timer that retries a failed legacy login.
type retryLogin struct{}

// wakeUp logs in a registered user of an always-on transport.
type wakeUp struct{}

// runsExpired wakes the loop when command runs may have expired, so that
// an otherwise idle loop can end.
type runsExpired struct{}

// user is one XMPP user's state on one transport. Only the goroutine running
// run touches the fields below the channels.
type user struct {
	g      *Gateway
	jid    jid.JID // bare
	log    *slog.Logger
	mail   *mailbox      // every event the loop handles, in order
	quit   chan struct{} // closed to ask the loop to log out and stop
	done   chan struct{} // closed when the loop has stopped
	ctx    context.Context
	cancel context.CancelFunc

	reg       *registry.Registration // nil when not registered
	resources map[string]presenceBody
	best      transports.Presence // the user's presence as the legacy side sees it

	sess        transports.Session
	sink        *sink
	loginSink   *sink // the sink of the login in flight, whose events count already
	relogin     bool  // the login in flight used settings that have changed since
	loggingIn   bool
	retry       *time.Timer // pending login retry, if any
	retries     int         // failed logins in a row, for the retry wait
	refused     bool        // the network refused the credentials: no retry until they change or the user comes back
	status      transports.Status
	pending     []stanzaEvent // messages waiting for the login to finish
	inFlight    int           // asynchronous operations whose result is due
	regInFlight bool          // a Register call is under way
	regRelease  func()        // gives back the place the registration in flight holds
	limiter     *rate.Limiter // messages to the network; see checkMessage

	contacts map[string]transports.Presence // last presence of each legacy contact
	senders  recentSenders                  // which resource sent recent messages

	rooms       map[string]*room     // group chats joined or being joined, by address
	saved       map[string]savedRoom // rooms to rejoin, as stored
	seen        map[string]bool      // resources seen available since the loop started
	requests    map[string]*inbound  // stanzas waiting for a transports.Done, by id
	nextRequest uint64

	unconfirmed map[string]bool // resources not heard of since the reconnection, see reconfirm
	confirmGen  uint64

	gen      uint64        // the component connection the loop last saw come up
	awaiting bool          // messages wait for the user's presence after a reconnection: see hold.go
	held     []legacyEvent // messages waiting, in order

	runs     map[string]*cmdRun // commands being run, by session id
	nextRun  uint64
	runSweep *time.Timer              // wakes the loop when a run may have expired
	snap     atomic.Pointer[userSnap] // for other goroutines: see publish
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
		resources: make(map[string]presenceBody),
		gen:       g.conn.generation(),
		contacts:  make(map[string]transports.Presence),
		rooms:     make(map[string]*room),
		seen:      make(map[string]bool),
		requests:  make(map[string]*inbound),
		runs:      make(map[string]*cmdRun),
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
	return !u.wantSession() && u.sess == nil && !u.loggingIn && u.inFlight == 0 && len(u.runs) == 0
}

// wantSession reports whether the user needs a legacy session: a resource
// is online or in a room, or the transport keeps registered users logged
// in; never once the access lists no longer allow the user's domain.
func (u *user) wantSession() bool {
	return (len(u.resources) > 0 || len(u.rooms) > 0 || (u.g.info.AlwaysOn && u.reg != nil)) && u.g.allowed(u.jid.Domainpart())
}

// handleSafely handles one event; a panic is logged and costs this event
// only, never the loop or other users.
func (u *user) handleSafely(ev event) {
	defer func() {
		if r := recover(); r != nil {
			u.log.Error("panic in user loop", "panic", r, "stack", string(debug.Stack()))
			switch ev := ev.(type) {
			case legacyEvent:
				ev.done <- fmt.Errorf("gateway: panic handling event: %v", r)
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
		if u.reg != nil && u.wantSession() && u.sess == nil && !u.loggingIn && u.retry == nil {
			u.login()
		}
	case runsExpired:
		u.sweepRuns()
	case retryLogin:
		u.retry = nil
		if u.reg != nil && u.wantSession() && u.sess == nil && !u.loggingIn {
			u.login()
		}
	}
}

func (u *user) handleStanza(ev stanzaEvent) {
	if ev.room {
		switch ev.s.XMLName.Local {
		case "presence":
			u.handleRoomPresence(ev)
		case "message":
			u.handleRoomMessage(ev)
		case "iq":
			u.handleRoomIQ(ev)
		}
		return
	}
	switch ev.s.XMLName.Local {
	case "presence":
		u.handlePresence(ev)
	case "message":
		u.handleMessage(ev)
	case "iq":
		u.handleIQ(ev)
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
	err := u.g.conn.sendConfirmed(ctx, u.gen, v)
	if err != nil && u.handleUndeliverable(v, err) {
		return nil
	}
	if err != nil && !errors.Is(err, errUnconfirmed) {
		u.log.Warn("cannot send a stanza", "err", err)
	}
	return err
}

// sink is the Sink of one legacy session. It refuses events once the loop
// has closed that session, so a transport blocked in Deliver can never
// deadlock with a Close waiting for it.
type sink struct {
	u      *user
	closed chan struct{}
}

func newSink(u *user) *sink { return &sink{u: u, closed: make(chan struct{})} }

func (s *sink) close() {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
}

// Deliver implements transports.Sink.
func (s *sink) Deliver(ctx context.Context, ev transports.Event) error {
	done := make(chan error, 1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errSessionClosed
	case <-s.u.done:
		return errSessionClosed
	default:
	}
	if !s.u.post(legacyEvent{ev: ev, at: time.Now(), sink: s, ctx: ctx, done: done}) {
		return errSessionClosed
	}
	// Queued, the event may wait behind the very Close that closes this
	// sink (the loop closing the session waits for the transport, which
	// waits here): stop waiting then; the loop drops the event later.
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errSessionClosed
	case <-s.u.done:
		return errSessionClosed
	}
}
