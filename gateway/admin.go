package gateway

import (
	"strings"

	"mellium.im/xmpp/jid"
)

// userSnap is a user's state as other goroutines may read it: the user's
// loop publishes one after each event.
type userSnap struct {
	session   string
	connected bool
	resources int
	rooms     int
}

// publish updates the user's snapshot.
func (u *user) publish() {
	u.snap.Store(&userSnap{
		session:   u.sessionText(),
		connected: u.session.sess != nil && u.session.status.Connected,
		resources: len(u.resources.online),
		rooms:     len(u.rooms.joined),
	})
}

// sessionText describes the legacy session for users and admins.
func (u *user) sessionText() string {
	switch {
	case u.session.loggingIn:
		return "logging in"
	case u.session.sess != nil && u.session.status.Connected:
		return "connected"
	case u.session.sess != nil:
		return "not connected (" + u.session.status.Message + ")"
	case u.session.status.Message != "":
		return "none (" + u.session.status.Message + ")"
	}
	return "none (offline for the transport)"
}

// snapshot returns a running user's snapshot, or nil.
func (g *Gateway) snapshot(bare string) *userSnap {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := g.users[bare]; u != nil {
		return u.snap.Load()
	}
	return nil
}

// adminAction is an admin's order, run by the target user's loop.
type adminAction struct {
	kind  string // "disconnect" or "remove"
	force bool   // start the user's loop if it is not running
}

// dispatchTo queues ev for a user's loop; unless it is forced, only a
// running loop gets it. It reports whether it was queued.
func (g *Gateway) dispatchTo(bare string, ev adminAction) bool {
	j, err := jid.Parse(strings.ToLower(bare))
	if err != nil {
		return false
	}
	if !ev.force && g.snapshot(j.Bare().String()) == nil {
		return false
	}
	g.dispatch(j.Bare(), ev)
	return true
}

func (u *user) adminAction(a adminAction) {
	switch a.kind {
	case "disconnect":
		u.log.Info("disconnected by an administrator")
		u.logout("An administrator closed your session.")
	case "remove":
		if u.reg == nil {
			return
		}
		u.log.Info("removed by an administrator")
		if e := u.unregister(); e != nil {
			u.log.Error("cannot remove the user", "err", noteOf(e))
		}
	}
}

// announceEv is an admin's announcement to every online user.
type announceEv struct{ body string }

// announce sends body to every user online for the transport and returns
// how many were sent it.
func (g *Gateway) announce(body string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, u := range g.users {
		if s := u.snap.Load(); s == nil || s.resources == 0 {
			continue
		}
		if u.mail.put(announceEv{body}, maxQueuedStanzas) {
			n++
		}
	}
	return n
}

func (u *user) announced(a announceEv) {
	if len(u.resources.online) == 0 {
		return
	}
	_ = u.send(messageOut{From: u.g.domain.String(), To: u.jid.String(), ID: u.g.newID(), Type: "headline", Subject: "Announcement from " + u.g.cfg.Name, Body: a.body})
}
