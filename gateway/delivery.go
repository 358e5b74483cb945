package gateway

import (
	"encoding/xml"
	"errors"
	"time"

	"passerelle.dev/passerelle/transports"
)

// handleLegacy turns an event of the legacy session into stanzas.
func (u *user) handleLegacy(le legacyEvent) {
	// A session may speak before Login has returned to us: its events count
	// from the start.
	if le.sink != u.session.sink && le.sink != u.session.loginSink {
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
			u.contacts.last[ev.From] = ev
		} else {
			delete(u.contacts.last, ev.From)
		}
		u.sendContactPresence(ev.From, ev, ev.Status)
	case transports.Status:
		if ev.Connected && !u.session.status.Connected && u.session.sess != nil {
			// A live session came back: the transport reconnected it.
			u.g.metrics.reconnect("legacy")
		}
		u.session.status = ev
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
	if r := u.rooms.joined[m.From]; r != nil && m.Nick != "" {
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
	if len(u.resources.online) == 0 {
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
	to, ok := u.resources.senders.get(f.ID)
	if !ok {
		// Unknown sender: tell every resource.
		var err error
		for res := range u.resources.online {
			err = errors.Join(err, u.send(messageOut{From: from, To: res, ID: f.ID, Type: "error", Payload: transportError(f.Err)}))
		}
		return err
	}
	return u.send(messageOut{From: from, To: to, ID: f.ID, Type: "error", Payload: transportError(f.Err)})
}
