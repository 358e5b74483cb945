package gateway

import (
	"context"
	"errors"
	"time"

	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/backoff"
)

// handlePresence handles a presence from the user to the transport or to a
// legacy contact.
func (u *user) handlePresence(ev stanzaEvent) {
	s := ev.s
	switch s.Type {
	case "", "unavailable", "error":
		u.resourcePresence(s)
	case "probe":
		u.answerProbe(ev)
	case "subscribe":
		u.subscribe(ev)
	case "unsubscribe":
		u.unsubscribe(ev)
	case "subscribed":
		// The user approved our subscription request. The server sends
		// their presence by itself; a probe covers servers where the
		// subscription already existed.
		if ev.legacy == "" && u.reg != nil && len(u.resources) == 0 {
			_ = u.send(presenceOut{From: u.g.domain.String(), To: u.jid.String(), Type: "probe"})
		}
	case "unsubscribed":
		// The user refused or revoked our subscription: the server keeps
		// the roster, nothing to store here.
	}
}

// resourcePresence tracks the user's resources; the first available one logs
// the user in, the last one leaving logs them out. The server sends the same
// presence to the transport and to every subscribed contact, so repeats are
// ignored.
func (u *user) resourcePresence(s *inbound) {
	res := s.from.String()
	u.confirmed(res)
	if s.Type == "" && u.awaiting {
		// The user is back on this connection: what waited can go.
		defer u.release()
	}
	if u.reg == nil && s.Type == "" {
		// Not registered: nothing to log in to, nothing to track.
		return
	}
	if s.Type != "" {
		if _, ok := u.resources[res]; !ok {
			return
		}
		delete(u.resources, res)
		if !u.wantSession() {
			u.logout("")
			return
		}
	} else {
		p := s.presence()
		if old, ok := u.resources[res]; ok && old == p {
			return
		}
		u.resources[res] = p
		if u.reg != nil {
			u.rejoinSaved(res)
		}
	}
	u.best = bestPresence(u.resources)
	switch {
	case u.reg == nil:
	case u.sess != nil:
		ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
		defer cancel()
		if err := u.sess.SetPresence(ctx, u.best); err != nil {
			u.log.Warn("cannot set legacy presence", "err", err)
		}
	case !u.loggingIn && u.retry == nil && !u.refused:
		u.login()
	}
}

// bestPresence is the presence of the highest-priority, most available
// resource, as the legacy network should see the user.
func bestPresence(res map[string]presenceBody) transports.Presence {
	rank := map[string]int{"chat": 5, "": 4, "away": 3, "xa": 2, "dnd": 1}
	var best presenceBody
	found := false
	for _, p := range res {
		if !found || p.Priority > best.Priority || (p.Priority == best.Priority && rank[p.Show] > rank[best.Show]) {
			best, found = p, true
		}
	}
	return transports.Presence{Available: found, Show: transports.Show(best.Show), Status: best.Status}
}

// login starts logging the user in to the legacy network; loginFinished
// gets the outcome.
func (u *user) login() {
	values := registrationValues(u.reg)
	sk := newSink(u)
	req := transports.LoginRequest{
		User:     u.jid.String(),
		Values:   values,
		Presence: u.best,
		Contacts: u.rosterContacts(),
		State:    registry.TransportState(u.g.cfg.Store, u.jid.String(), u.g.domain.String()),
		Events:   sk,
		Logger:   u.log,
	}
	u.loggingIn = true
	u.loginSink = sk
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
	u.loggingIn = false
	u.loginSink = nil
	if u.relogin {
		// The settings changed while this login ran: start over with them.
		u.relogin = false
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
		u.status = transports.Status{Connected: false, Message: "Login failed: " + userText(ev.err)}
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
	u.retries = 0
	u.sess, u.sink = ev.sess, ev.sink
	u.status = transports.Status{Connected: true}
	u.sendStatus()
	pending := u.pending
	u.pending = nil
	for _, p := range pending {
		u.handleMessage(p)
	}
	u.joinWaitingRooms()
}

// reconnect closes the legacy session and logs in again, with the current
// settings; a login in flight used older ones, so it is redone when it ends.
func (u *user) reconnect(reason string) {
	if u.loggingIn {
		u.relogin = true
		return
	}
	if u.sess != nil {
		u.logout(reason)
	}
	u.cancelRetry()
	u.retries, u.refused = 0, false
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
		u.refused = true
		return
	}
	if errors.Is(err, errPanic) {
		// A bug met on this user's data: trying again would meet it
		// again. New settings or a new presence try again.
		u.refused = true
		return
	}
	u.retries++
	wait := backoff.Wait(u.retries, u.g.cfg.LoginRetry, maxLoginRetry)
	u.log.Info("retrying the legacy login later", "in", wait.Round(time.Millisecond))
	u.retry = time.AfterFunc(wait, func() {
		u.post(retryLogin{})
	})
}

func (u *user) cancelRetry() {
	if u.retry != nil {
		u.retry.Stop()
		u.retry = nil
	}
}

// logout closes the legacy session and tells the user's remaining resources
// that the transport and its contacts are gone.
func (u *user) logout(reason string) {
	u.cancelRetry()
	u.refused = false
	u.failPending(stanzaErr(stanza.Wait, stanza.RecipientUnavailable, "You went offline before the legacy login finished."))
	u.failHeld(errSessionClosed)
	if u.sess == nil {
		return
	}
	u.sink.close()
	u.closeSession(u.sess)
	u.sess, u.sink = nil, nil
	u.log.Info("logged out of the legacy network")
	for id, s := range u.requests {
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.RecipientUnavailable, "The legacy session ended."))
		delete(u.requests, id)
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
	for addr, p := range u.contacts {
		if p.Available {
			u.sendContactPresence(addr, transports.Presence{From: addr}, reason)
		}
	}
	clear(u.contacts)
	u.status = transports.Status{}
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
	for _, p := range u.pending {
		u.g.replyError(p.s, e)
	}
	u.pending = nil
}

// announce re-sends the presences the user should see, after the component
// connection came back.
func (u *user) announce() {
	if u.reg == nil || len(u.resources) == 0 {
		return
	}
	u.sendStatus()
	for addr, p := range u.contacts {
		if p.Available {
			u.sendContactPresence(addr, p, "")
		}
	}
}

// sendStatus shows the legacy session's state as the transport's presence.
func (u *user) sendStatus() {
	switch {
	case u.loggingIn:
		// The outcome will tell.
	case u.sess != nil && u.status.Connected:
		u.sendDomainPresence("", string(u.status.Show), u.status.Message)
	case u.sess != nil || u.status.Message != "":
		u.sendDomainPresence("", "xa", u.status.Message)
	default:
		u.sendDomainPresence("unavailable", "", "")
	}
}

func (u *user) sendDomainPresence(typ, show, status string) {
	_ = u.send(presenceOut{From: u.g.domain.String(), To: u.jid.String(), Type: typ, Show: show, Status: status})
}

// sendContactPresence shows a legacy contact's presence to the user.
func (u *user) sendContactPresence(addr string, p transports.Presence, status string) {
	from, err := u.g.contactJID(addr)
	if err != nil {
		u.log.Warn("legacy contact has no JID", "err", err)
		return
	}
	out := presenceOut{From: from, To: u.jid.String(), Show: string(p.Show), Status: p.Status}
	if !p.Available {
		out.Type, out.Show, out.Status = "unavailable", "", status
	}
	_ = u.send(out)
}

// answerProbe tells the user the presence of the transport or of a contact.
func (u *user) answerProbe(ev stanzaEvent) {
	if u.reg == nil {
		_ = u.send(presenceOut{From: u.g.replyFrom(ev.s), To: u.jid.String(), Type: "unsubscribed"})
		return
	}
	if ev.legacy == "" {
		u.sendStatus()
		return
	}
	u.sendContactPresence(ev.legacy, u.contacts[ev.legacy], "")
}
