package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"time"

	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// handleMessage carries a message from the user to a legacy contact.
func (u *user) handleMessage(ev stanzaEvent) {
	s := ev.s
	switch {
	case s.Type == "error":
		u.log.Debug("the user's client bounced a message", "to", s.ToRaw)
		return
	case ev.legacy == "" && (s.Type == "chat" || s.Type == "normal" || s.Type == ""):
		u.handleChatCommand(ev)
		return
	case ev.legacy == "":
		u.g.replyError(s, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, "The transport takes chat commands only; write to a contact's address."))
		return
	case s.Type == "groupchat":
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Not a group chat."))
		return
	case u.reg == nil:
		u.g.replyError(s, stanzaErr(stanza.Auth, stanza.RegistrationRequired, "Register with "+u.g.domain.String()+" first."))
		return
	}
	m := s.message()
	if m.Body == "" && m.Subject == "" {
		return // chat states, receipts and the like have nothing to carry
	}
	switch {
	case u.sess == nil && u.loggingIn:
		if len(u.pending) >= maxPending {
			u.g.replyError(s, stanzaErr(stanza.Wait, stanza.ResourceConstraint, "Too many messages waiting for the login."))
			return
		}
		u.pending = append(u.pending, ev)
		return
	case u.sess == nil:
		text := "You are not logged in to " + u.g.info.Name + ": make the transport see your presence."
		if u.status.Message != "" {
			text = u.status.Message
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
	err := u.sess.Send(ctx, transports.Message{To: ev.legacy, ID: s.ID, Type: typ, Body: m.Body, Subject: m.Subject, Thread: m.Thread})
	if err != nil {
		u.log.Info("message to the legacy network failed", "to", ev.legacy, "err", err)
		u.g.replyError(s, transportError(err))
		return
	}
	u.senders.add(s.ID, s.FromRaw)
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

// handleLegacy turns an event of the legacy session into stanzas.
func (u *user) handleLegacy(le legacyEvent) {
	// A session may speak before Login has returned to us: its events count
	// from the start.
	if le.sink != u.sink && le.sink != u.loginSink {
		le.done <- errSessionClosed
		return
	}
	var err error
	switch ev := le.ev.(type) {
	case transports.Message:
		u.deliverOrHold(le, ev) // answers le.done, now or once released
		return
	case transports.Presence:
		if ev.From == "" {
			break
		}
		if ev.Available {
			u.contacts[ev.From] = ev
		} else {
			delete(u.contacts, ev.From)
		}
		u.sendContactPresence(ev.From, ev, ev.Status)
	case transports.Status:
		if ev.Connected && !u.status.Connected && u.sess != nil {
			// A live session came back: the transport reconnected it.
			u.g.metrics.reconnect("legacy")
		}
		u.status = ev
		u.sendStatus()
	case transports.SendFailure:
		err = u.bounce(ev)
	case transports.RoomJoined:
		u.roomJoined(ev)
	case transports.OccupantChanged:
		u.occupantChanged(ev)
	case transports.RoomSubject:
		u.roomSubject(ev)
	case transports.RoomLeft:
		u.roomLeft(ev)
	case transports.Done:
		u.finishRequest(ev)
	}
	le.done <- err
}

func (u *user) deliverMessage(m transports.Message, at time.Time) error {
	if m.Type == transports.Groupchat {
		u.roomMessage(m, at)
		return nil
	}
	if r := u.rooms[m.From]; r != nil && m.Nick != "" {
		// A private message from an occupant, as MUC services send them:
		// marked muc#user (XEP-0045 §7.5), by which servers know not to
		// carbon-copy it to resources not in the room, or to each other.
		for res := range r.resources {
			_ = u.send(messageOut{From: r.occupantJID(m.Nick), To: res, ID: m.ID, Type: string(m.Type), Body: m.Body, Payload: mucUser{}})
		}
		u.g.metrics.delivered(at)
		return nil
	}
	from, err := u.g.contactJID(m.From)
	if err != nil {
		return err
	}
	typ := string(m.Type)
	if typ == "" {
		typ = string(transports.Chat)
	}
	recipients := u.chatRecipients(m.From)
	var payload []any
	if m.ID != "" {
		// A stable id from the network lets clients drop a repeat (XEP-0359).
		payload = append(payload, originID{ID: m.ID})
	}
	if len(recipients) > 1 {
		// Each resource gets its own copy: a server's carbons would add
		// the others' copies to it.
		payload = append(payload, carbonsPrivate{}, noCopy{})
	}
	for _, to := range recipients {
		out := messageOut{From: from, To: to, ID: m.ID, Type: typ, Subject: m.Subject, Body: m.Body, Thread: m.Thread}
		if payload != nil {
			out.Payload = payload
		}
		if m.ID == "" {
			if err := u.send(out); err != nil {
				return err
			}
			continue
		}
		// The transport may redeliver a message with an id: it advances a
		// durable position once Deliver returns, so return only once the
		// server has the message, not when it is merely written.
		if err := u.sendConfirmed(out); err != nil {
			return err
		}
	}
	u.g.metrics.delivered(at)
	return nil
}

// chatRecipients says where a chat message from a legacy address goes: to
// the bare JID, for the server to route, when a resource of the user is
// online for the transport or none is in a room; otherwise to each resource
// in a room on the sender's network. A room-only client sends no presence
// of its own, so the server would store a bare-JID message offline; and
// without the user's approval of the transport's subscription the gateway
// cannot tell whether any resource is available.
func (u *user) chatRecipients(from string) []string {
	if len(u.resources) == 0 {
		if res := u.roomResources(from); len(res) > 0 {
			return res
		}
	}
	return []string{u.jid.String()}
}

// originID is the XEP-0359 origin-id of a message.
type originID struct {
	XMLName xml.Name `xml:"urn:xmpp:sid:0 origin-id"`
	ID      string   `xml:"id,attr"`
}

// carbonsPrivate keeps a server from carbon-copying a message to the
// user's other resources (XEP-0280).
type carbonsPrivate struct {
	XMLName xml.Name `xml:"urn:xmpp:carbons:2 private"`
}

// noCopy asks a server not to copy a message to addresses other than its
// recipient (XEP-0334).
type noCopy struct {
	XMLName xml.Name `xml:"urn:xmpp:hints no-copy"`
}

// bounce returns a message the legacy network could not deliver to the user
// as an XMPP error on that message.
func (u *user) bounce(f transports.SendFailure) error {
	from, err := u.g.contactJID(f.To)
	if err != nil {
		return err
	}
	to, ok := u.senders.get(f.ID)
	if !ok {
		// Unknown sender: tell every resource.
		var err error
		for res := range u.resources {
			err = errors.Join(err, u.send(messageOut{From: from, To: res, ID: f.ID, Type: "error", Payload: transportError(f.Err)}))
		}
		return err
	}
	return u.send(messageOut{From: from, To: to, ID: f.ID, Type: "error", Payload: transportError(f.Err)})
}

// handleIQ answers iq requests addressed to the transport domain (the user
// part: registration) or to a legacy contact.
func (u *user) handleIQ(ev stanzaEvent) {
	s := ev.s
	if !s.isRequest() {
		return
	}
	p := s.payload()
	switch {
	case ev.legacy == "" && p.Space == nsRegister && p.Local == "query":
		u.handleRegister(s)
	case ev.legacy == "" && s.Type == "set" && p.Space == nsCommands && p.Local == "command":
		u.handleAdhoc(s)
	case ev.legacy == "" && s.Type == "get" && p.Space == nsDiscoItems && p.Local == "query":
		u.g.replyResult(s, u.commandItems())
	case ev.legacy != "" && s.Type == "get" && p.Space == nsDiscoInfo && p.Local == "query":
		u.g.replyResult(s, contactDiscoInfo(ev.legacy))
	default:
		u.g.replyError(s, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, ""))
	}
}
