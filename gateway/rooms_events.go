package gateway

import (
	"context"
	"time"

	"passerelle.dev/passerelle/transports"
)

// Room events from the network, as XEP-0045 stanzas for each resource in
// the room.

// roomJoined shows the room to every resource that joined it: after a
// join, and again after the network rejoined it.
func (u *user) roomJoined(ev transports.RoomJoined) {
	r := u.rooms.joined[ev.Room]
	if r == nil {
		// The user left while the join was under way.
		if rs, ok := u.roomSession(); ok {
			ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
			defer cancel()
			_ = rs.LeaveRoom(ctx, ev.Room, "")
		}
		return
	}
	old := r.occupants
	r.occupants = make(map[string]transports.Occupant, len(ev.Occupants))
	for _, o := range ev.Occupants {
		r.occupants[o.Nick] = o
	}
	r.nick, r.subject, r.subjectBy = ev.Nick, ev.Subject, ev.SubjectBy
	for res := range r.resources {
		if r.joined {
			// A rejoin: those who left meanwhile leave here too.
			for nick, o := range old {
				if _, still := r.occupants[nick]; !still {
					_ = u.send(u.occupantPresence(r, o, res, "unavailable", mucItem{}))
				}
			}
		}
		u.sendRoomState(r, res)
	}
	r.joined = true
	u.saveRoom(r)
}

// sendRoomState sends one resource the room as a join shows it: everyone
// else, then the user with status 110 (and 210 when the network changed the
// nickname), then the subject.
func (u *user) sendRoomState(r *room, res string) {
	for _, nick := range sortedNicks(r) {
		if nick != r.nick {
			_ = u.send(u.occupantPresence(r, r.occupants[nick], res, "", mucItem{}))
		}
	}
	self := r.occupants[r.nick]
	self.Nick = r.nick
	codes := []int{110}
	if r.nick != r.resources[res] {
		codes = append(codes, 210)
	}
	_ = u.send(u.occupantPresence(r, self, res, "", mucItem{}, codes...))
	_ = u.send(subjectOut{From: r.occupantJID(r.subjectBy), To: res, ID: u.g.newID(), Type: "groupchat", Subject: r.subject})
}

func (u *user) occupantChanged(ev transports.OccupantChanged) {
	r := u.rooms.joined[ev.Room]
	if r == nil || !r.joined {
		return
	}
	o := ev.Occupant
	self := o.Nick == r.nick
	var codes []int
	if self {
		codes = append(codes, 110)
	}
	if known, ok := r.occupants[o.Nick]; ok && o.Role == "" {
		// Keep the role and affiliation that were known: a nick change or a
		// departure does not carry them.
		o.Role, o.Affiliation, o.Address = known.Role, known.Affiliation, known.Address
	}
	switch {
	case ev.NewNick != "":
		delete(r.occupants, o.Nick)
		renamed := o
		renamed.Nick = ev.NewNick
		r.occupants[ev.NewNick] = renamed
		for res := range r.resources {
			_ = u.send(u.occupantPresence(r, o, res, "unavailable", mucItem{Nick: ev.NewNick}, append(codes, 303)...))
			_ = u.send(u.occupantPresence(r, renamed, res, "", mucItem{}, codes...))
		}
		if self {
			r.nick = ev.NewNick
			u.saveRoom(r)
		}
	case ev.Left:
		delete(r.occupants, o.Nick)
		item := mucItem{Reason: ev.Reason}
		if ev.By != "" {
			item.Actor = &mucActor{Nick: ev.By}
		}
		switch {
		case ev.Banned:
			codes = append(codes, 301)
			o.Affiliation, o.Role = transports.AffiliationOutcast, transports.RoleNone
		case ev.Kicked:
			codes = append(codes, 307)
			o.Role = transports.RoleNone
		}
		if self {
			u.removedFromRoom(r, item, codes[1:]...)
			if !u.wantSession() {
				u.logout("")
			}
			return
		}
		for res := range r.resources {
			p := u.occupantPresence(r, o, res, "unavailable", item, codes...)
			p.Status = ev.Reason
			_ = u.send(p)
		}
	default:
		r.occupants[o.Nick] = o
		for res := range r.resources {
			_ = u.send(u.occupantPresence(r, o, res, "", mucItem{}, codes...))
		}
	}
}

func (u *user) roomSubject(ev transports.RoomSubject) {
	r := u.rooms.joined[ev.Room]
	if r == nil || !r.joined {
		return
	}
	r.subject, r.subjectBy = ev.Subject, ev.Nick
	for res := range r.resources {
		_ = u.send(subjectOut{From: r.occupantJID(ev.Nick), To: res, ID: u.g.newID(), Type: "groupchat", Subject: ev.Subject})
	}
}

// roomMessage delivers a group-chat message to every resource in the room.
func (u *user) roomMessage(m transports.Message, at time.Time) {
	r := u.rooms.joined[m.From]
	if r == nil || !r.joined {
		return
	}
	for res := range r.resources {
		_ = u.send(messageOut{From: r.occupantJID(m.Nick), To: res, ID: m.ID, Type: "groupchat", Subject: m.Subject, Body: m.Body})
	}
	u.g.metrics.delivered(at)
}

func (u *user) roomLeft(ev transports.RoomLeft) {
	r := u.rooms.joined[ev.Room]
	switch {
	case r == nil:
	case !r.joined:
		err := ev.Err
		if err == nil {
			err = transports.Errorf(transports.Unavailable, "%s", ev.Reason)
		}
		u.failRoom(r, err)
	default:
		reason := ev.Reason
		if reason == "" && ev.Err != nil {
			reason = userText(ev.Err)
		}
		u.removedFromRoom(r, mucItem{Reason: reason}, 333)
	}
	if !u.wantSession() {
		u.logout("")
	}
}

// occupantPresence builds the presence of one occupant for one resource.
func (u *user) occupantPresence(r *room, o transports.Occupant, to, typ string, item mucItem, codes ...int) presenceOut {
	item.Role, item.Affiliation = string(o.Role), string(o.Affiliation)
	if item.Role == "" {
		item.Role = string(transports.RoleParticipant)
	}
	if item.Affiliation == "" {
		item.Affiliation = string(transports.AffiliationNone)
	}
	if typ == "unavailable" && item.Role != string(transports.RoleNone) {
		item.Role = string(transports.RoleNone)
	}
	if o.Address != "" {
		item.JID, _ = u.g.contactJID(o.Address)
	}
	x := mucUser{Items: []mucItem{item}}
	for _, c := range codes {
		x.Status = append(x.Status, mucStatus{Code: c})
	}
	p := presenceOut{From: r.occupantJID(o.Nick), To: to, Type: typ, Payload: x}
	if typ == "" {
		p.Show, p.Status = string(o.Show), o.Status
	}
	return p
}
