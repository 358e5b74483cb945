package gateway

import (
	"context"
	"sort"
	"strconv"
	"time"

	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// maxRooms bounds the rooms one user may be in (or joining) at once.
const maxRooms = 100

// room is one group chat of the user, shared by every resource of theirs
// that joined it: one membership on the legacy network, many XMPP occupants.
type room struct {
	addr string // canonical legacy address
	jid  string // bare room JID, as the user addressed it
	nick string // the user's nickname: asked for, then as the network says
	// resources maps each joined full JID to the nickname it asked for.
	resources map[string]string
	password  string
	joined    bool // the network confirmed the join
	occupants map[string]transports.Occupant
	subject   string
	subjectBy string
}

func (r *room) occupantJID(nick string) string {
	if nick == "" {
		return r.jid
	}
	return r.jid + "/" + nick
}

// roomSession returns the session's group-chat side.
func (u *user) roomSession() (transports.Rooms, bool) {
	rs, ok := u.sess.(transports.Rooms)
	return rs, ok && u.sess != nil
}

// handleRoomPresence handles a presence from one of the user's resources to
// a room: a join, a nickname change, or leaving.
func (u *user) handleRoomPresence(ev stanzaEvent) {
	s := ev.s
	res := s.from.String()
	nick := s.to.Resourcepart()
	r := u.rooms[ev.legacy]
	switch s.Type {
	case "unavailable":
		if r != nil {
			if _, in := r.resources[res]; in {
				u.leaveRoom(r, res, s.presence().Status)
			}
		}
		return
	case "":
	default:
		return // subscriptions and probes have no meaning for a room
	}
	switch {
	case nick == "":
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.JIDMalformed, "Join the room as room@service/nickname."))
		return
	case u.reg == nil:
		u.g.replyError(s, stanzaErr(stanza.Auth, stanza.RegistrationRequired, "Register with "+u.g.domain.String()+" first."))
		return
	case r == nil:
		u.startJoin(ev, nick)
		return
	}
	if _, in := r.resources[res]; !in {
		// Another resource joins a room the user is already in: it shares the
		// membership and gets the room as it is.
		r.resources[res] = nick
		if r.joined {
			u.sendRoomState(r, res)
			u.saveRoom(r)
		}
		return
	}
	if nick != r.nick && r.joined {
		u.changeNick(ev, r, nick)
	}
	// Otherwise a status update inside the room: nothing to carry.
}

func (u *user) startJoin(ev stanzaEvent, nick string) {
	s := ev.s
	if len(u.rooms) >= maxRooms {
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.ResourceConstraint, "You are in too many rooms on this gateway."))
		return
	}
	var x struct {
		Password string `xml:"password"`
	}
	_, _ = s.decodeChild(mucJoinName, &x)
	r := &room{
		addr:      ev.legacy,
		jid:       s.to.Bare().String(),
		nick:      nick,
		resources: map[string]string{s.from.String(): nick},
		password:  x.Password,
		occupants: make(map[string]transports.Occupant),
	}
	u.rooms[r.addr] = r
	u.joinRoom(r)
}

// joinRoom asks the network to join r, logging in first if needed;
// loginFinished joins the rooms waiting for it.
func (u *user) joinRoom(r *room) {
	if u.sess == nil {
		if !u.loggingIn && u.retry == nil {
			u.refused = false
			u.login()
		}
		return
	}
	rs, ok := u.roomSession()
	if !ok {
		u.failRoom(r, transports.Errorf(transports.Unsupported, "%s has no group chats", u.g.info.Name))
		return
	}
	ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
	defer cancel()
	if err := rs.JoinRoom(ctx, r.addr, r.nick, r.password); err != nil {
		u.failRoom(r, err)
	}
}

// joinWaitingRooms joins the rooms asked for while the login was under way.
func (u *user) joinWaitingRooms() {
	for _, r := range u.sortedRooms() {
		if !r.joined {
			u.joinRoom(r)
		}
	}
}

// failRoom tells every resource waiting for r that the join failed.
func (u *user) failRoom(r *room, err error) {
	u.log.Info("cannot join a room", "room", r.addr, "err", err)
	e := transportError(err)
	for res, asked := range r.resources {
		_ = u.send(presenceOut{From: r.occupantJID(asked), To: res, Type: "error", Payload: e})
	}
	delete(u.rooms, r.addr)
	if isPermanent(err) {
		u.forgetRoom(r.addr)
	}
}

// failWaitingRooms fails the joins that wait for a login that failed.
func (u *user) failWaitingRooms(err error) {
	for _, r := range u.sortedRooms() {
		if !r.joined {
			u.failRoom(r, err)
		}
	}
}

// leaveRoom takes one resource out of r; the last one leaves the room on the
// network too.
func (u *user) leaveRoom(r *room, res, reason string) {
	delete(r.resources, res)
	self := r.occupants[r.nick]
	self.Nick = r.nick
	_ = u.send(u.occupantPresence(r, self, res, "unavailable", mucItem{}, 110))
	if len(r.resources) > 0 {
		u.saveRoom(r)
		return
	}
	if u.reg != nil && u.reg.Fields[transports.FieldKeepRooms] == "true" {
		// Going offline sends unavailable presence to the transport and
		// to the rooms in no set order: decide a little later whether the
		// user left the room or went offline.
		time.AfterFunc(keepRoomsDelay, func() {
			select {
			case u.events <- leaveCheck{room: r, res: res, reason: reason}:
			case <-u.done:
			}
		})
		return
	}
	u.partRoom(r, reason)
}

// keepRoomsDelay is how long a room without resources waits before the
// gateway decides whether the user left it or went offline.
const keepRoomsDelay = 2 * time.Second

// leaveCheck decides the fate of a room whose last resource left.
type leaveCheck struct {
	room        *room
	res, reason string
}

func (u *user) checkLeave(c leaveCheck) {
	r := c.room
	if u.rooms[r.addr] != r || len(r.resources) > 0 {
		return // back in the room, or gone already
	}
	if _, online := u.resources[c.res]; online {
		u.partRoom(r, c.reason) // left the room while staying online
		return
	}
	u.log.Info("keeping a room joined while the user is offline", "room", r.addr)
}

// partRoom leaves a room on the network and forgets it.
func (u *user) partRoom(r *room, reason string) {
	delete(u.rooms, r.addr)
	u.forgetRoom(r.addr)
	if rs, ok := u.roomSession(); ok {
		ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
		defer cancel()
		if err := rs.LeaveRoom(ctx, r.addr, reason); err != nil {
			u.log.Warn("cannot leave a room", "room", r.addr, "err", err)
		}
	}
	if !u.wantSession() {
		u.logout("")
	}
}

// dropRooms takes the user out of every room, telling each resource why.
func (u *user) dropRooms(reason string) {
	for _, r := range u.sortedRooms() {
		u.removedFromRoom(r, mucItem{Reason: reason}, 333)
	}
}

// removedFromRoom tells every resource in r that the user is out of it, and
// forgets the room.
func (u *user) removedFromRoom(r *room, item mucItem, codes ...int) {
	self := r.occupants[r.nick]
	self.Nick = r.nick
	for res := range r.resources {
		p := u.occupantPresence(r, self, res, "unavailable", item, append([]int{110}, codes...)...)
		p.Status = item.Reason
		_ = u.send(p)
	}
	delete(u.rooms, r.addr)
	u.forgetRoom(r.addr)
}

func (u *user) changeNick(ev stanzaEvent, r *room, nick string) {
	rs, ok := u.roomSession()
	if !ok {
		u.g.replyError(ev.s, stanzaErr(stanza.Wait, stanza.RecipientUnavailable, "Not connected."))
		return
	}
	id := u.newRequest(ev.s)
	ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
	defer cancel()
	if err := rs.SetNick(ctx, id, r.addr, nick); err != nil {
		u.finishRequest(transports.Done{ID: id, Err: err})
	}
}

// handleRoomMessage carries a message from the user to a room or, typed
// chat to room/nick, to one occupant.
func (u *user) handleRoomMessage(ev stanzaEvent) {
	s := ev.s
	if s.Type == "error" {
		return
	}
	r := u.rooms[ev.legacy]
	if _, in := r.resourcesOf()[s.from.String()]; !in {
		u.g.replyError(s, stanzaErr(stanza.Cancel, stanza.NotAcceptable, "Join the room first."))
		return
	}
	nick := s.to.Resourcepart()
	switch {
	case s.Type == "groupchat" && nick != "":
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Send group chat messages to the room itself."))
		return
	case s.Type != "groupchat" && nick == "":
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Messages to a room are of type groupchat."))
		return
	case !r.joined || u.sess == nil:
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.RecipientUnavailable, "The room is not joined yet."))
		return
	}
	m := s.message()
	if m.Body == "" && (m.Subject == "" || nick != "") {
		return // chat states and the like
	}
	out := transports.Message{To: r.addr, ID: s.ID, Type: transports.Groupchat, Body: m.Body, Subject: m.Subject}
	if nick != "" {
		out.Type, out.Nick, out.Subject = transports.Chat, nick, ""
	}
	ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
	defer cancel()
	if err := u.sess.Send(ctx, out); err != nil {
		u.log.Info("message to a room failed", "room", r.addr, "err", err)
		u.g.replyError(s, transportError(err))
		return
	}
	u.senders.add(s.ID, s.FromRaw)
	u.g.stats.toLegacy.Add(1)
	if nick != "" || m.Body == "" {
		// A subject shows once the network confirms it.
		return
	}
	// As a MUC service does, reflect the message to every resource of the
	// user in the room, under the id the client gave it.
	id := s.ID
	if id == "" {
		id = u.g.newID()
	}
	for res := range r.resources {
		_ = u.send(messageOut{From: r.occupantJID(r.nick), To: res, ID: id, Type: "groupchat", Body: m.Body})
	}
}

func (r *room) resourcesOf() map[string]string {
	if r == nil {
		return nil
	}
	return r.resources
}

// Events from the network.

func (u *user) roomJoined(ev transports.RoomJoined) {
	r := u.rooms[ev.Room]
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
	r := u.rooms[ev.Room]
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
	r := u.rooms[ev.Room]
	if r == nil || !r.joined {
		return
	}
	r.subject, r.subjectBy = ev.Subject, ev.Nick
	for res := range r.resources {
		_ = u.send(subjectOut{From: r.occupantJID(ev.Nick), To: res, ID: u.g.newID(), Type: "groupchat", Subject: ev.Subject})
	}
}

// roomMessage delivers a group-chat message to every resource in the room.
func (u *user) roomMessage(m transports.Message) {
	r := u.rooms[m.From]
	if r == nil || !r.joined {
		return
	}
	u.g.stats.fromLegacy.Add(1)
	for res := range r.resources {
		_ = u.send(messageOut{From: r.occupantJID(m.Nick), To: res, ID: m.ID, Type: "groupchat", Subject: m.Subject, Body: m.Body})
	}
}

func (u *user) roomLeft(ev transports.RoomLeft) {
	r := u.rooms[ev.Room]
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

// isPermanent reports whether a failed join should not be retried later.
func isPermanent(err error) bool {
	switch transports.KindOf(err) {
	case transports.Internal, transports.Unreachable, transports.NotConnected, transports.RateLimited:
		return false
	}
	return true
}

// sortedNicks lists the room's occupants in a fixed order.
func sortedNicks(r *room) []string {
	nicks := make([]string, 0, len(r.occupants))
	for nick := range r.occupants {
		nicks = append(nicks, nick)
	}
	sort.Strings(nicks)
	return nicks
}

// sortedRooms lists the user's rooms in a fixed order.
func (u *user) sortedRooms() []*room {
	rs := make([]*room, 0, len(u.rooms))
	for _, r := range u.rooms {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].addr < rs[j].addr })
	return rs
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

// newRequest remembers a stanza whose answer waits for a transports.Done.
func (u *user) newRequest(s *inbound) string {
	u.nextRequest++
	id := strconv.FormatUint(u.nextRequest, 10)
	u.requests[id] = s
	return id
}

// finishRequest answers the stanza that started a request.
func (u *user) finishRequest(d transports.Done) {
	s, ok := u.requests[d.ID]
	if !ok {
		return
	}
	delete(u.requests, d.ID)
	switch {
	case d.Err != nil:
		u.g.replyError(s, transportError(d.Err))
	case s.XMLName.Local == "iq":
		u.g.replyResult(s, nil)
	}
}
