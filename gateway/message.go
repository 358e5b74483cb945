package gateway

import (
	"context"

	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// handleMessage carries a message from the user to a legacy contact.
func (u *user) handleMessage(ev stanzaEvent) {
	s := ev.s
	if u.reg == nil {
		u.g.replyError(s, stanzaErr(stanza.Auth, stanza.RegistrationRequired, "Register with "+u.g.domain.String()+" first."))
		return
	}
	m := s.message()
	if m.Body == "" && m.Subject == "" {
		return // chat states, receipts and the like have nothing to carry
	}
	switch {
	case u.session.sess == nil && u.session.loggingIn:
		if len(u.session.pending) >= maxPending {
			u.g.replyError(s, stanzaErr(stanza.Wait, stanza.ResourceConstraint, "Too many messages waiting for the login."))
			return
		}
		u.session.pending = append(u.session.pending, ev)
		return
	case u.session.sess == nil:
		text := "You are not logged in to " + u.g.info.Name + ": make the transport see your presence."
		if u.session.status.Message != "" {
			text = u.session.status.Message
		}
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.RecipientUnavailable, text))
		return
	}
	if !u.checkMessage(s, m.Body, m.Subject) {
		return
	}
	typ := transports.MessageType(s.Type)
	if typ == "" {
		typ = transports.Normal
	}
	ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
	defer cancel()
	err := u.session.sess.Send(ctx, transports.Message{To: ev.legacy, ID: s.ID, Type: typ, Body: m.Body, Subject: m.Subject, Thread: m.Thread})
	if err != nil {
		u.log.Info("message to the legacy network failed", "to", ev.legacy, "err", err)
		u.g.replyError(s, transportError(err))
		return
	}
	u.resources.senders.add(s.ID, s.FromRaw)
	u.g.metrics.sent(s.at)
}

// recentSenders remembers which resource sent the last messages, by id, so
// that a later delivery failure goes back to it: servers drop errors sent to
// a bare JID.
type recentSenders struct {
	byID  map[string]string
	order []string
}

const maxRecentSenders = 256

func (r *recentSenders) add(id, from string) {
	if id == "" {
		return
	}
	if r.byID == nil {
		r.byID = make(map[string]string)
	}
	if _, ok := r.byID[id]; !ok {
		r.order = append(r.order, id)
	}
	r.byID[id] = from
	if len(r.order) > maxRecentSenders {
		delete(r.byID, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *recentSenders) get(id string) (string, bool) {
	from, ok := r.byID[id]
	return from, ok
}

// bouncedByClient takes an error the user's client returned for a message.
func (u *user) bouncedByClient(ev stanzaEvent) {
	u.log.Debug("the user's client bounced a message", "to", ev.s.ToRaw)
}

// refuseDomainMessage answers a message to the transport that is no chat
// command.
func (u *user) refuseDomainMessage(ev stanzaEvent) {
	u.g.replyError(ev.s, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, "The transport takes chat commands only; write to a contact's address."))
}

// refuseGroupchat answers a group-chat message sent to a contact.
func (u *user) refuseGroupchat(ev stanzaEvent) {
	u.g.replyError(ev.s, stanzaErr(stanza.Modify, stanza.BadRequest, "Not a group chat."))
}
