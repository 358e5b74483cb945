package gateway

import (
	"context"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/address"
)

// route sends one incoming stanza where it belongs: it parses the
// addresses, checks the allow-list and dispatches along the routing table
// (routes.go). It runs on the connection's reader goroutine, so it never
// waits on a user: the onPublic and onReader rows answer here, everything else
// is queued to the sender's own loop.
func (g *Gateway) route(s *inbound) {
	defer func() { _ = recovered(g.log, "routing a stanza", recover()) }()
	var err error
	if s.from, err = jid.Parse(s.FromRaw); err != nil || s.FromRaw == "" {
		g.log.Debug("dropping a stanza without a valid sender", "from", s.FromRaw, "kind", s.XMLName.Local)
		return
	}
	if s.to, err = jid.Parse(s.ToRaw); err != nil || !strings.EqualFold(s.to.Domainpart(), g.domain.Domainpart()) {
		g.replyError(s, stanzaErr(stanza.Modify, stanza.JIDMalformed, "Not an address of this gateway."))
		return
	}
	if s.to.Localpart() == "" && g.serveOn(onPublic, s, toDomain) {
		return
	}
	if !g.allowed(s.from.Domainpart()) {
		g.replyError(s, stanzaErr(stanza.Cancel, stanza.Forbidden,
			fmt.Sprintf("Users of %s may not use this gateway.", s.from.Domainpart())))
		return
	}
	var legacy string
	to := toDomain
	if s.to.Localpart() != "" {
		if legacy, err = g.legacyAddress(s.to.Localpart()); err != nil {
			g.replyError(s, stanzaErr(stanza.Modify, stanza.JIDMalformed, err.Error()))
			return
		}
		switch {
		case !g.isRoom(legacy):
			to = toContact
		case s.to.Resourcepart() == "":
			to = toRoom
		default:
			to = toOccupant
		}
	}
	if g.serveOn(onReader, s, to) {
		return
	}
	g.dispatch(s.from.Bare(), stanzaEvent{s: s, legacy: legacy, to: to})
}

// isRoom reports whether a canonical legacy address is a group chat.
func (g *Gateway) isRoom(legacy string) bool {
	rt, ok := g.cfg.Transport.(transports.RoomTransport)
	return ok && rt.IsRoom(legacy)
}

// hasRooms reports whether the transport has group chats.
func (g *Gateway) hasRooms() bool {
	_, ok := g.cfg.Transport.(transports.RoomTransport)
	return ok
}

// legacyAddress decodes a JID localpart into the transport's canonical legacy
// address.
func (g *Gateway) legacyAddress(local string) (string, error) {
	raw, err := address.Decode(local)
	if err != nil {
		return "", fmt.Errorf("%q is not an address on this gateway", local)
	}
	canon, err := g.cfg.Transport.ParseAddress(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid %s address: %v", raw, g.info.Name, userText(err))
	}
	return canon, nil
}

// contactJID returns the JID of a legacy address on this gateway; the empty
// address is the gateway itself.
func (g *Gateway) contactJID(legacy string) (string, error) {
	if legacy == "" {
		return g.domain.String(), nil
	}
	local, err := address.Encode(legacy)
	if err != nil {
		return "", fmt.Errorf("gateway: address %q: %w", legacy, err)
	}
	return local + "@" + g.domain.String(), nil
}

// dispatch queues ev for the user's loop, starting one if needed. A user
// whose queue is full gets an error back instead of slowing everyone down.
func (g *Gateway) dispatch(bare jid.JID, ev event) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		if se, ok := ev.(stanzaEvent); ok {
			g.replyError(se.s, stanzaErr(stanza.Wait, stanza.ServiceUnavailable, "The gateway is shutting down."))
		}
		return
	}
	key := bare.String()
	u := g.users[key]
	if u == nil {
		u = newUser(g, bare)
		g.users[key] = u
		g.wg.Add(1)
		go u.run()
	}
	if u.mail.put(ev, maxQueuedStanzas) {
		g.mu.Unlock()
	} else {
		g.mu.Unlock()
		g.log.Warn("user queue full, refusing a stanza", "user", key)
		if se, ok := ev.(stanzaEvent); ok {
			g.replyError(se.s, stanzaErr(stanza.Wait, stanza.ResourceConstraint, "Too many requests in flight; try again shortly."))
		}
	}
}

// broadcast queues ev for every running user loop.
func (g *Gateway) broadcast(ev event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range g.users {
		if !u.mail.put(ev, maxQueuedStanzas) {
			g.log.Warn("user queue full, dropping an internal event", "user", u.jid)
		}
	}
}

// reply sends v, bounded in time, from the reader goroutine or a user loop.
func (g *Gateway) reply(v any) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := g.conn.send(ctx, v); err != nil {
		g.log.Warn("cannot send a stanza", "err", err)
	}
}

// replyError answers s with e, unless s is of a kind that must not be
// answered with an error.
func (g *Gateway) replyError(s *inbound, e stanza.Error) {
	if !answersWithError(s) || s.FromRaw == "" {
		return
	}
	g.metrics.stanzaError(string(e.Condition))
	g.reply(errorReply(s, g.replyFrom(s), e))
}

// replyResult answers an iq request with an optional payload.
func (g *Gateway) replyResult(s *inbound, payload any) {
	g.reply(iqOut{From: g.replyFrom(s), To: s.FromRaw, ID: s.ID, Type: "result", Payload: payload})
}

// replyFrom is the address an answer to s comes from: the address s was sent
// to when it is ours, else the component domain. ejabberd closes the whole
// component stream on a stanza from outside its domain.
func (g *Gateway) replyFrom(s *inbound) string {
	if s.to.Domainpart() != "" && strings.EqualFold(s.to.Domainpart(), g.domain.Domainpart()) {
		return s.to.String()
	}
	return g.domain.String()
}
