package gateway

import (
	"context"

	"passerelle.dev/passerelle/transports"
)

// resources is what the loop knows of the user's XMPP resources.
type resources struct {
	online      map[string]presenceBody // available resources, by resource
	best        transports.Presence     // the user's presence as the legacy side sees it
	seen        map[string]bool         // resources seen available since the loop started
	senders     recentSenders           // which resource sent recent messages
	unconfirmed map[string]bool         // resources not heard of since the reconnection, see reconfirm
	confirmGen  uint64
}

func newResources() resources {
	return resources{online: make(map[string]presenceBody), seen: make(map[string]bool)}
}

// approvedTransport handles the user's approval of the transport's
// subscription request. The server sends their presence by itself; a probe
// covers servers where the subscription already existed.
func (u *user) approvedTransport(ev stanzaEvent) {
	if u.reg != nil && len(u.resources.online) == 0 {
		_ = u.send(presenceOut{From: u.g.domain.String(), To: u.jid.String(), Type: "probe"})
	}
}

// resourcePresence tracks the user's resources; the first available one logs
// the user in, the last one leaving logs them out. The server sends the same
// presence to the transport and to every subscribed contact, so repeats are
// ignored.
func (u *user) resourcePresence(ev stanzaEvent) {
	s := ev.s
	res := s.from.String()
	u.confirmed(res)
	if s.Type == "" && u.holding.awaiting {
		// The user is back on this connection: what waited can go.
		defer u.release()
	}
	if u.reg == nil && s.Type == "" {
		// Not registered: nothing to log in to, nothing to track.
		return
	}
	if s.Type != "" {
		if _, ok := u.resources.online[res]; !ok {
			return
		}
		delete(u.resources.online, res)
		if !u.wantSession() {
			u.logout("")
			return
		}
	} else {
		p := s.presence()
		if old, ok := u.resources.online[res]; ok && old == p {
			return
		}
		u.resources.online[res] = p
		if u.reg != nil {
			u.rejoinSaved(res)
		}
	}
	u.resources.best = bestPresence(u.resources.online)
	switch {
	case u.reg == nil:
	case u.session.sess != nil:
		ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
		defer cancel()
		if err := u.session.sess.SetPresence(ctx, u.resources.best); err != nil {
			u.log.Warn("cannot set legacy presence", "err", err)
		}
	case !u.session.loggingIn && u.session.retry == nil && !u.session.refused:
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

// announce re-sends the presences the user should see, after the component
// connection came back.
func (u *user) announce() {
	if u.reg == nil || len(u.resources.online) == 0 {
		return
	}
	u.sendStatus()
	for addr, p := range u.contacts.last {
		if p.Available {
			u.sendContactPresence(addr, p, "")
		}
	}
}

// sendStatus shows the legacy session's state as the transport's presence.
func (u *user) sendStatus() {
	switch {
	case u.session.loggingIn:
		// The outcome will tell.
	case u.session.sess != nil && u.session.status.Connected:
		u.sendDomainPresence("", string(u.session.status.Show), u.session.status.Message)
	case u.session.sess != nil || u.session.status.Message != "":
		u.sendDomainPresence("", "xa", u.session.status.Message)
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
	u.sendContactPresence(ev.legacy, u.contacts.last[ev.legacy], "")
}
