package gateway

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// rooms is the user's group chats.
type rooms struct {
	joined      map[string]*room     // group chats joined or being joined, by address
	saved       map[string]savedRoom // rooms to rejoin, as stored
	requests    map[string]*inbound  // stanzas waiting for a transports.Done, by id
	nextRequest uint64
}

func newRooms() rooms {
	return rooms{joined: make(map[string]*room), requests: make(map[string]*inbound)}
}

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
	rs, ok := u.session.sess.(transports.Rooms)
	return rs, ok && u.session.sess != nil
}

// serveRoomInfo answers disco#info about a room.
func (u *user) serveRoomInfo(ev stanzaEvent) {
	u.g.replyResult(ev.s, discoInfo{
		Identities: []info.Identity{{Category: "conference", Type: "text", Name: ev.legacy}},
		Features:   u.g.featureList(toRoom),
	})
}

// leaveRoomPresence handles one of the user's resources leaving a room.
func (u *user) leaveRoomPresence(ev stanzaEvent) {
	res := ev.s.from.String()
	if r := u.rooms.joined[ev.legacy]; r != nil {
		if _, in := r.resources[res]; in {
			u.leaveRoom(r, res, ev.s.presence().Status)
		}
	}
}

// handleRoomPresence handles an available presence from one of the user's
// resources to a room: a join, a nickname change, or a status update.
// Subscriptions and probes have no meaning for a room: no row takes them.
func (u *user) handleRoomPresence(ev stanzaEvent) {
	s := ev.s
	res := s.from.String()
	nick := s.to.Resourcepart()
	r := u.rooms.joined[ev.legacy]
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
	if !u.roomAllowed() {
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.ResourceConstraint,
			fmt.Sprintf("You are in %d rooms on this gateway, the most it allows.", len(u.rooms.joined))))
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
	u.rooms.joined[r.addr] = r
	u.joinRoom(r)
}

// joinRoom asks the network to join r, logging in first if needed;
// loginFinished joins the rooms waiting for it.
func (u *user) joinRoom(r *room) {
	if u.session.sess == nil {
		if !u.session.loggingIn && u.session.retry == nil {
			u.session.refused = false
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
	delete(u.rooms.joined, r.addr)
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
			u.post(leaveCheck{room: r, res: res, reason: reason})
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
	if u.rooms.joined[r.addr] != r || len(r.resources) > 0 {
		return // back in the room, or gone already
	}
	if _, online := u.resources.online[c.res]; online {
		u.partRoom(r, c.reason) // left the room while staying online
		return
	}
	u.log.Info("keeping a room joined while the user is offline", "room", r.addr)
}

// partRoom leaves a room on the network and forgets it.
func (u *user) partRoom(r *room, reason string) {
	delete(u.rooms.joined, r.addr)
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
	delete(u.rooms.joined, r.addr)
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
	r := u.rooms.joined[ev.legacy]
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
	case !r.joined || u.session.sess == nil:
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.RecipientUnavailable, "The room is not joined yet."))
		return
	}
	m := s.message()
	if m.Body == "" && (m.Subject == "" || nick != "") {
		return // chat states and the like
	}
	if !u.checkMessage(s, m.Body, m.Subject) {
		return
	}
	out := transports.Message{To: r.addr, ID: s.ID, Type: transports.Groupchat, Body: m.Body, Subject: m.Subject}
	if nick != "" {
		out.Type, out.Nick, out.Subject = transports.Chat, nick, ""
	}
	ctx, cancel := context.WithTimeout(u.ctx, u.g.cfg.LegacyTimeout)
	defer cancel()
	if err := u.session.sess.Send(ctx, out); err != nil {
		u.log.Info("message to a room failed", "room", r.addr, "err", err)
		u.g.replyError(s, transportError(err))
		return
	}
	u.resources.senders.add(s.ID, s.FromRaw)
	u.g.metrics.sent(s.at)
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

// roomResources lists, each once and in a fixed order, the user's
// resources in a room on the network of a legacy address.
func (u *user) roomResources(addr string) []string {
	scope := u.g.scope(addr)
	seen := make(map[string]bool)
	var out []string
	for _, r := range u.rooms.joined {
		if scope != "" && u.g.scope(r.addr) != scope {
			continue
		}
		for res := range r.resources {
			if !seen[res] {
				seen[res] = true
				out = append(out, res)
			}
		}
	}
	sort.Strings(out)
	return out
}

// scope names the network of a legacy address (see transports.Scoper); ""
// is any network.
func (g *Gateway) scope(addr string) string {
	if sc, ok := g.cfg.Transport.(transports.Scoper); ok {
		return sc.Scope(addr)
	}
	return ""
}

// sortedRooms lists the user's rooms in a fixed order.
func (u *user) sortedRooms() []*room {
	rs := make([]*room, 0, len(u.rooms.joined))
	for _, r := range u.rooms.joined {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].addr < rs[j].addr })
	return rs
}

// newRequest remembers a stanza whose answer waits for a transports.Done.
func (u *user) newRequest(s *inbound) string {
	u.rooms.nextRequest++
	id := strconv.FormatUint(u.rooms.nextRequest, 10)
	u.rooms.requests[id] = s
	return id
}

// finishRequest answers the stanza that started a request.
func (u *user) finishRequest(d transports.Done) {
	s, ok := u.rooms.requests[d.ID]
	if !ok {
		return
	}
	delete(u.rooms.requests, d.ID)
	switch {
	case d.Err != nil:
		u.g.replyError(s, transportError(d.Err))
	case s.XMLName.Local == "iq":
		u.g.replyResult(s, nil)
	}
}
