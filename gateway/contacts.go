package gateway

import (
	"context"

	"mellium.im/xmpp/disco/info"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// contacts is what the loop knows of the user's legacy contacts.
type contacts struct {
	last map[string]transports.Presence // last presence of each legacy contact
}

// subscribe answers the user's request to see the presence of the transport
// or of a legacy contact. Only registered users are approved (XEP-0100).
func (u *user) subscribe(ev stanzaEvent) {
	s := ev.s
	if u.reg == nil {
		_ = u.send(presenceOut{From: u.g.replyFrom(s), To: u.jid.String(), Type: "unsubscribed"})
		return
	}
	if ev.legacy != "" {
		if ok, why := u.contactAllowed(ev.legacy); !ok {
			u.log.Warn("contact refused", "contact", ev.legacy, "why", why)
			_ = u.send(presenceOut{From: u.g.replyFrom(s), To: u.jid.String(), Type: "unsubscribed"})
			_ = u.send(messageOut{From: u.g.domain.String(), To: u.jid.String(), ID: u.g.newID(), Type: "chat", Body: why})
			return
		}
		c := registry.Contact{Address: ev.legacy, Name: ev.legacy, Subscribed: true}
		if err := u.putContact(c); err != nil {
			u.log.Error("cannot store a contact", "err", err)
			_ = u.send(presenceOut{From: u.g.replyFrom(s), To: u.jid.String(), Type: "unsubscribed"})
			return
		}
	}
	_ = u.send(presenceOut{From: u.g.replyFrom(s), To: u.jid.String(), Type: "subscribed"})
	if ev.legacy != "" {
		u.watch(ev.legacy, true)
	}
	if ev.legacy == "" {
		if len(u.resources.online) > 0 {
			u.sendStatus()
		}
		return
	}
	if p, ok := u.contacts.last[ev.legacy]; ok && p.Available {
		u.sendContactPresence(ev.legacy, p, "")
	}
}

// unsubscribe records that the user no longer follows a contact.
func (u *user) unsubscribe(ev stanzaEvent) {
	if u.reg != nil && ev.legacy != "" {
		ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
		defer cancel()
		u.watch(ev.legacy, false)
		if err := u.g.cfg.Store.DeleteContact(ctx, u.jid.String(), u.g.domain.String(), ev.legacy); err != nil {
			u.log.Error("cannot remove a contact", "err", err)
		}
	}
	_ = u.send(presenceOut{From: u.g.replyFrom(ev.s), To: u.jid.String(), Type: "unsubscribed"})
}

func (u *user) putContact(c registry.Contact) error {
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	return u.g.cfg.Store.PutContact(ctx, u.jid.String(), u.g.domain.String(), c)
}

// watch tells a session that follows contacts' presence about a contact
// added to or removed from the roster.
func (u *user) watch(addr string, on bool) {
	w, ok := u.session.sess.(transports.ContactWatcher)
	if !ok || u.session.sess == nil {
		return
	}
	ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
	defer cancel()
	if err := w.Watch(ctx, addr, on); err != nil {
		u.log.Warn("cannot follow a contact's presence", "contact", addr, "err", err)
	}
}

// rosterContacts lists the legacy addresses in the user's roster.
func (u *user) rosterContacts() []string {
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	cs, err := u.g.cfg.Store.Contacts(ctx, u.jid.String(), u.g.domain.String())
	if err != nil {
		u.log.Warn("cannot list the user's contacts", "err", err)
		return nil
	}
	addrs := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.Subscribed && !u.g.isRoom(c.Address) {
			addrs = append(addrs, c.Address)
		}
	}
	return addrs
}

// serveContactInfo answers disco#info about a legacy contact: a client on
// the legacy network.
func (u *user) serveContactInfo(ev stanzaEvent) {
	u.g.replyResult(ev.s, discoInfo{
		Identities: []info.Identity{{Category: "client", Type: "pc", Name: ev.legacy}},
		Features:   u.g.featureList(toContact),
	})
}
