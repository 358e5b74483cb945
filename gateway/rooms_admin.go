package gateway

import (
	"context"

	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// handleRoomAdmin answers a muc#admin query: moderation and lists.
func (u *user) handleRoomAdmin(ev stanzaEvent) {
	u.roomAdmin(ev.s, u.rooms.joined[ev.legacy])
}

// refuseRoomConfig answers a muc#owner query: rooms are configured on the
// legacy network.
func (u *user) refuseRoomConfig(ev stanzaEvent) {
	u.g.replyError(ev.s, stanzaErr(stanza.Cancel, stanza.FeatureNotImplemented, "Rooms are configured on the legacy network."))
}

// roomAdmin serves muc#admin: occupant lists by role or affiliation, and
// changes of role or affiliation (kick, ban, voice, operator), which the
// network confirms or refuses.
func (u *user) roomAdmin(s *inbound, r *room) {
	if _, in := r.resourcesOf()[s.from.String()]; !in || !r.joined {
		u.g.replyError(s, stanzaErr(stanza.Cancel, stanza.NotAcceptable, "Join the room first."))
		return
	}
	var q mucAdmin
	if _, err := s.decodeChild(s.payload(), &q); err != nil || len(q.Items) != 1 {
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Give exactly one item."))
		return
	}
	it := q.Items[0]
	if s.Type == "get" {
		u.g.replyResult(s, u.occupantList(r, it))
		return
	}
	nick := it.Nick
	if nick == "" && it.JID != "" {
		for _, o := range r.occupants {
			if j, err := u.g.contactJID(o.Address); err == nil && o.Address != "" && j == it.JID {
				nick = o.Nick
			}
		}
	}
	if nick == "" || (it.Role == "" && it.Affiliation == "") {
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Name an occupant by nick, and a role or affiliation."))
		return
	}
	rs, ok := u.roomSession()
	if !ok {
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.RecipientUnavailable, "Not connected."))
		return
	}
	id := u.newRequest(s)
	ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
	defer cancel()
	m := transports.Moderation{Nick: nick, Role: transports.Role(it.Role), Affiliation: transports.Affiliation(it.Affiliation), Reason: it.Reason}
	if err := rs.Moderate(ctx, id, r.addr, m); err != nil {
		u.finishRequest(transports.Done{ID: id, Err: err})
	}
}

// occupantList lists the occupants with the role or affiliation asked for.
func (u *user) occupantList(r *room, want mucItem) mucAdmin {
	var q mucAdmin
	for _, nick := range sortedNicks(r) {
		o := r.occupants[nick]
		if (want.Role != "" && string(o.Role) == want.Role) || (want.Affiliation != "" && string(o.Affiliation) == want.Affiliation) {
			it := mucItem{Nick: o.Nick, Role: string(o.Role), Affiliation: string(o.Affiliation)}
			it.JID, _ = u.g.contactJID(o.Address)
			if o.Address == "" {
				it.JID = ""
			}
			q.Items = append(q.Items, it)
		}
	}
	return q
}
