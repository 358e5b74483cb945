package gateway

import (
	"context"
	"errors"
	"time"

	"golang.org/x/time/rate"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/backoff"
)

const (
	loginTimeout  = 2 * time.Minute
	closeTimeout  = 10 * time.Second
	maxPending    = 100
	maxLoginRetry = 10 * time.Minute
)

// session is the life of the user's legacy session: the open session, the
// login in flight, its retries and the messages waiting for it.
type session struct {
	sess      transports.Session
	sink      *sink
	loginSink *sink // the sink of the login in flight, whose events count already
	relogin   bool  // the login in flight used settings that have changed since
	loggingIn bool
	retry     *time.Timer // pending login retry, if any
	retries   int         // failed logins in a row, for the retry wait
	refused   bool        // the network refused the credentials: no retry until they change or the user comes back
	status    transports.Status
	pending   []stanzaEvent // messages waiting for the login to finish
	limiter   *rate.Limiter // messages to the network; see checkMessage
}

// login starts logging the user in to the legacy network; loginFinished
// gets the outcome.
func (u *user) login() {
	values := registrationValues(u.reg)
	sk := newSink(u)
	req := transports.LoginRequest{
		User:     u.jid.String(),
		Values:   values,
		Presence: u.resources.best,
		Contacts: u.rosterContacts(),
		State:    registry.TransportState(u.g.cfg.Store, u.jid.String(), u.g.domain.String()),
		Events:   sk,
		Logger:   u.log,
	}
	u.session.loggingIn = true
	u.session.loginSink = sk
	u.inFlight++
	u.log.Info("logging in to the legacy network")
	goSafe(u.log, "legacy login", func() {
		ctx, cancel := context.WithTimeout(u.ctx, loginTimeout)
		defer cancel()
		sess, err := u.g.cfg.Transport.Login(ctx, req)
		if !u.post(loginDone{sess: sess, sink: sk, err: err}) {
			// The loop stopped without waiting: close what we opened.
			sk.close()
			if err == nil {
				u.closeSession(sess)
			}
		}
	}, func(err error) {
		// The login panicked: it opened nothing we know of.
		if !u.post(loginDone{sink: sk, err: err}) {
			sk.close()
		}
	})
}

func (u *user) loginFinished(ev loginDone) {
	u.session.loggingIn = false
	u.session.loginSink = nil
	if u.session.relogin {
		// The settings changed while this login ran: start over with them.
		u.session.relogin = false
		ev.sink.close()
		if ev.err == nil {
			u.closeSession(ev.sess)
		}
		if u.wantSession() && u.reg != nil {
			u.login()
		}
		return
	}
	switch {
	case ev.err != nil:
		ev.sink.close()
		u.log.Warn("legacy login failed", "err", ev.err)
		u.g.metrics.login(false)
		u.session.status = transports.Status{Connected: false, Message: "Login failed: " + userText(ev.err)}
		u.failPending(transportError(ev.err))
		u.failWaitingRooms(ev.err)
		u.sendStatus()
		u.scheduleRetry(ev.err)
		return
	case !u.wantSession() || u.reg == nil:
		// The user left (or unregistered) while we were logging in.
		ev.sink.close()
		u.closeSession(ev.sess)
		return
	}
	u.log.Info("logged in to the legacy network")
	u.g.metrics.login(true)
	u.session.retries = 0
	u.session.sess, u.session.sink = ev.sess, ev.sink
	u.session.status = transports.Status{Connected: true}
	u.sendStatus()
	pending := u.session.pending
	u.session.pending = nil
	for _, p := range pending {
		u.handleMessage(p)
	}
	u.joinWaitingRooms()
}

// reconnect closes the legacy session and logs in again, with the current
// settings; a login in flight used older ones, so it is redone when it ends.
func (u *user) reconnect(reason string) {
	if u.session.loggingIn {
		u.session.relogin = true
		return
	}
	if u.session.sess != nil {
		u.logout(reason)
	}
	u.cancelRetry()
	u.session.retries, u.session.refused = 0, false
	if u.wantSession() && u.reg != nil {
		u.login()
	}
}

// scheduleRetry retries a login that failed for a passing reason, with a
// doubling, jittered wait. Refused credentials wait for the user instead:
// new settings or a new presence try again.
func (u *user) scheduleRetry(err error) {
	switch transports.KindOf(err) {
	case transports.NotAuthorized, transports.Forbidden, transports.BadRequest, transports.Unsupported:
		u.session.refused = true
		return
	}
	if errors.Is(err, errPanic) {
		// A bug met on this user's data: trying again would meet it
		// again. New settings or a new presence try again.
		u.session.refused = true
		return
	}
	u.session.retries++
	wait := backoff.Wait(u.session.retries, u.g.cfg.LoginRetry, maxLoginRetry)
	u.log.Info("retrying the legacy login later", "in", wait.Round(time.Millisecond))
	u.session.retry = time.AfterFunc(wait, func() {
		u.post(retryLogin{})
	})
}

func (u *user) cancelRetry() {
	if u.session.retry != nil {
		u.session.retry.Stop()
		u.session.retry = nil
	}
}

// logout closes the legacy session and tells the user's remaining resources
// that the transport and its contacts are gone.
func (u *user) logout(reason string) {
	u.cancelRetry()
	u.session.refused = false
	u.failPending(stanzaErr(stanza.Wait, stanza.RecipientUnavailable, "You went offline before the legacy login finished."))
	u.failHeld(errSessionClosed)
	if u.session.sess == nil {
		return
	}
	u.session.sink.close()
	u.closeSession(u.session.sess)
	u.session.sess, u.session.sink = nil, nil
	u.log.Info("logged out of the legacy network")
	for id, s := range u.rooms.requests {
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.RecipientUnavailable, "The legacy session ended."))
		delete(u.rooms.requests, id)
	}
	for _, r := range u.sortedRooms() {
		// Still wanted: joined again by the next login (a restarted gateway
		// rejoins the saved ones).
		r.joined = false
		if reason != "" {
			for res := range r.resources {
				_ = u.send(messageOut{From: r.jid, To: res, ID: u.g.newID(), Type: "groupchat", Body: reason})
			}
		}
	}
	for addr, p := range u.contacts.last {
		if p.Available {
			u.sendContactPresence(addr, transports.Presence{From: addr}, reason)
		}
	}
	clear(u.contacts.last)
	u.session.status = transports.Status{}
	u.sendDomainPresence("unavailable", "", reason)
}

func (u *user) closeSession(sess transports.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := sess.Close(ctx); err != nil {
		u.log.Warn("closing the legacy session", "err", err)
	}
}

func (u *user) failPending(e stanza.Error) {
	for _, p := range u.session.pending {
		u.g.replyError(p.s, e)
	}
	u.session.pending = nil
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

// loginDone reports the end of an asynchronous Login.
type loginDone struct {
	sess transports.Session
	sink *sink
	err  error
}

// retryLogin is the timer that retries a failed legacy login.
type retryLogin struct{}

var errSessionClosed = errors.New("gateway: legacy session closed")
