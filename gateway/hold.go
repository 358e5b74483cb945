package gateway

import (
	"errors"

	"passerelle.dev/passerelle/transports"
)

// holding is the messages that wait for the user's presence after a
// reconnection of the component.
type holding struct {
	gen      uint64        // the component connection the loop last saw come up
	awaiting bool          // messages wait for the user's presence after a reconnection
	queue    []legacyEvent // messages waiting, in order
}

// maxHeld bounds the messages a user loop holds (see hold). Each waits in
// its transport's Deliver, so a transport rarely has more than one or two
// held at a time.
const maxHeld = 1000

// errHeldFull answers a message that finds the hold full.
var errHeldFull = errors.New("gateway: too many messages waiting for the user to come back")

// Messages to the user wait after a reconnection.
//
// The XMPP server may have restarted while the component was away, and the
// user's client may be logging in again just then. A message to the bare
// JID that the server routes before the new session is available goes to
// offline storage, and ejabberd 23.01 writes it there while the new
// session's initial presence empties the storage: a message whose write
// (50–80 ms into its Mnesia disc table under load) ends after that is left
// there until the user's next login, although ejabberd answered the ping
// written after it. So after a reconnection the loop writes no message to
// the user's bare JID until the user's available presence was seen on the
// new connection, or the reconfirmation ended (confirmWait); a message
// with a stable id is never written on another connection than the one
// the loop last saw come up (sendConfirmed's gen). Meanwhile the messages
// wait here, in order, and their Deliver calls with them, so that a
// transport advances no durable position (an IMAP UID) for a message the
// server has not taken.

// direct reports whether m goes to the user's bare JID (and not to the
// resources in a room).
func (u *user) direct(m transports.Message) bool {
	if m.Type == transports.Groupchat {
		return false
	}
	r := u.rooms.joined[m.From]
	return r == nil || m.Nick == ""
}

// deliverOrHold delivers a message of the legacy session and answers its
// Deliver call, or holds it while the loop waits for the user after a
// reconnection.
func (u *user) deliverOrHold(le legacyEvent, m transports.Message) {
	if u.direct(m) && (u.holding.awaiting || len(u.holding.queue) > 0) {
		u.hold(le)
		return
	}
	err := u.dropLost(&le, m, u.deliverMessage(m, le.at))
	if errors.Is(err, errUnconfirmed) {
		u.hold(le)
		u.waitAgain()
		return
	}
	le.done <- err
}

// waitAgain waits for the user after a message could not be confirmed: the
// connection is gone, or newer than the loop knows. Its reconnected event
// starts the wait for the user; that event may still be queued, or was
// dropped from a full mailbox, so a connection already up is taken as
// reconnected now.
func (u *user) waitAgain() {
	u.holding.awaiting = true
	if gen := u.g.conn.generation(); gen > u.holding.gen && u.g.conn.connected() {
		u.reconnectedTo(gen)
	}
}

// reconnectedTo handles the component connection number gen coming up,
// once: the user's presences are shown again, the server is asked who of
// the user is online, and messages wait for the user.
func (u *user) reconnectedTo(gen uint64) {
	if gen <= u.holding.gen {
		// Seen already, or older than the connection the loop started on.
		return
	}
	u.awaitUser(gen)
	u.announce()
	u.reconfirm()
}

// hold queues le until release.
func (u *user) hold(le legacyEvent) {
	u.holding.queue = dropAbandoned(u.holding.queue)
	if len(u.holding.queue) >= maxHeld {
		u.log.Warn("too many messages waiting for the user to come back; refusing one")
		le.done <- errHeldFull
		return
	}
	if len(u.holding.queue) == 0 {
		u.log.Info("holding messages until the user is seen again after the reconnection")
	}
	u.holding.queue = append(u.holding.queue, le)
}

// dropAbandoned removes the events whose Deliver call gave up; it answered
// its caller already.
func dropAbandoned(held []legacyEvent) []legacyEvent {
	kept := held[:0]
	for _, le := range held {
		if le.ctx.Err() == nil {
			kept = append(kept, le)
		}
	}
	clear(held[len(kept):])
	return kept
}

// awaitUser starts waiting for the user after the component connection
// number gen came up; the reconfirmation (reconfirm) ends the wait at the
// latest.
func (u *user) awaitUser(gen uint64) {
	u.holding.gen = gen
	if len(u.resources.online) == 0 {
		// Nobody to wait for: the messages go to offline storage, as they
		// would have without the reconnection.
		u.release()
		return
	}
	u.holding.awaiting = true
}

// release ends the wait and delivers the held messages in order. A message
// that again cannot be confirmed starts another wait, in front of the rest.
func (u *user) release() {
	u.holding.awaiting = false
	if len(u.holding.queue) > 0 {
		u.log.Info("delivering the held messages", "count", len(u.holding.queue))
	}
	for len(u.holding.queue) > 0 {
		// Taken off first: a message whose delivery panics is not tried
		// again by the next release.
		le := u.holding.queue[0]
		u.holding.queue[0] = legacyEvent{}
		u.holding.queue = u.holding.queue[1:]
		switch {
		case le.ctx.Err() != nil:
			// Its Deliver call gave up and answered its caller already.
		case le.sink != u.session.sink && le.sink != u.session.loginSink:
			le.done <- errSessionClosed
		default:
			m := le.ev.(transports.Message)
			err := u.dropLost(&le, m, u.deliverMessage(m, le.at))
			if errors.Is(err, errUnconfirmed) {
				u.holding.queue = append([]legacyEvent{le}, u.holding.queue...)
				u.waitAgain()
				return
			}
			le.done <- err
		}
	}
	u.holding.queue = nil
}

// failHeld answers every held message with err.
func (u *user) failHeld(err error) {
	for _, le := range u.holding.queue {
		le.done <- err
	}
	u.holding.queue = nil
}
