package gateway

import (
	"encoding/xml"
	"slices"

	"mellium.im/xmpp/disco/info"
)

// target is the kind of address a stanza is sent to, as a set of bits.
type target uint8

const (
	toDomain   target = 1 << iota // the transport domain itself (any resource)
	toContact                     // a legacy contact
	toRoom                        // a group chat's bare address
	toOccupant                    // an occupant of a group chat: room/nick

	inRoom = toRoom | toOccupant
)

// where says on which goroutine a row's handler runs.
type where uint8

const (
	// onPublic rows run on the connection's reader before the allow-list:
	// stateless answers anyone may get from the transport domain.
	onPublic where = iota
	// onReader rows run on the reader after the allow-list and the address
	// decoding: stateless answers for allowed users.
	onReader
	// onLoop rows run on the sender's user loop, in order with everything
	// else of theirs.
	onLoop
)

// A routeRow says which stanzas one handler takes: the first row matching a
// stanza's kind, type, payload and target, on the goroutine under way, takes it.
type routeRow struct {
	kind    string   // iq, message or presence
	types   []string // the stanza types taken; none: every type
	payload xml.Name // the first child's name; an empty Local takes any name in Space; zero: any
	to      target
	run     where

	// serve answers on the reader (onPublic and onReader rows); false passes
	// the stanza on to the next stage.
	serve func(g *Gateway, s *inbound) bool
	// handle handles the stanza on the user loop (onLoop rows).
	handle func(u *user, ev stanzaEvent)

	// features are the disco#info features the row gives its targets.
	features []string
	// service are the features the row gives the transport domain when the
	// transport has rooms (a MUC service).
	service []string
}

var (
	get    = []string{"get"}
	getSet = []string{"get", "set"}
)

// routeTable lists every stanza the gateway handles, in matching order, and
// through the rows' features, what disco#info advertises.
func routeTable() []routeRow {
	return []routeRow{
		// The transport domain's stateless queries.
		{kind: "iq", types: get, payload: xml.Name{Space: nsDiscoInfo, Local: "query"}, to: toDomain, run: onPublic,
			serve: (*Gateway).serveDiscoInfo, features: []string{nsDiscoInfo}},
		{kind: "iq", types: get, payload: xml.Name{Space: nsDiscoItems, Local: "query"}, to: toDomain, run: onPublic,
			serve: (*Gateway).serveDiscoItems, features: []string{nsDiscoItems}},
		{kind: "iq", types: get, payload: xml.Name{Space: nsDiscoItems, Local: "query"}, to: toDomain, run: onLoop,
			handle: (*user).serveCommandItems}, // the commands node: the list depends on who asks
		{kind: "iq", types: get, payload: pingName, to: toDomain, run: onPublic,
			serve: (*Gateway).servePing, features: []string{nsPing}},
		{kind: "iq", types: get, payload: xml.Name{Space: nsVersion, Local: "query"}, to: toDomain, run: onPublic,
			serve: (*Gateway).serveVersion, features: []string{nsVersion}},

		// Registration, address translation and commands.
		{kind: "iq", types: getSet, payload: xml.Name{Space: nsRegister, Local: "query"}, to: toDomain, run: onLoop,
			handle: (*user).handleRegister, features: []string{nsRegister}},
		{kind: "iq", types: getSet, payload: xml.Name{Space: nsGateway, Local: "query"}, to: toDomain, run: onReader,
			serve: (*Gateway).serveGatewayIQ, features: []string{nsGateway}},
		{kind: "iq", types: []string{"set"}, payload: xml.Name{Space: nsCommands, Local: "command"}, to: toDomain, run: onLoop,
			handle: (*user).handleAdhoc, features: []string{nsDataForms, nsCommands}},

		// The user's presence and the transport's subscriptions.
		{kind: "presence", types: []string{"", "unavailable", "error"}, to: toDomain | toContact, run: onLoop,
			handle: (*user).resourcePresence},
		{kind: "presence", types: []string{"probe"}, to: toDomain | toContact, run: onLoop, handle: (*user).answerProbe},
		{kind: "presence", types: []string{"subscribe"}, to: toDomain | toContact, run: onLoop, handle: (*user).subscribe},
		{kind: "presence", types: []string{"unsubscribe"}, to: toDomain | toContact, run: onLoop, handle: (*user).unsubscribe},
		{kind: "presence", types: []string{"subscribed"}, to: toDomain, run: onLoop, handle: (*user).approvedTransport},
		// unsubscribed: the server keeps the roster, nothing to store.

		// Messages.
		{kind: "message", types: []string{"error"}, to: toDomain | toContact | inRoom, run: onLoop,
			handle: (*user).bouncedByClient},
		{kind: "message", types: []string{"chat", "normal", ""}, to: toDomain, run: onLoop,
			handle: (*user).handleChatCommand},
		{kind: "message", to: toDomain, run: onLoop, handle: (*user).refuseDomainMessage},
		{kind: "message", types: []string{"groupchat"}, to: toContact, run: onLoop, handle: (*user).refuseGroupchat},
		{kind: "message", to: toContact, run: onLoop, handle: (*user).handleMessage},
		{kind: "message", to: inRoom, run: onLoop, handle: (*user).handleRoomMessage},

		// Legacy contacts.
		{kind: "iq", types: get, payload: xml.Name{Space: nsDiscoInfo, Local: "query"}, to: toContact, run: onLoop,
			handle: (*user).serveContactInfo, features: []string{nsDiscoInfo}},

		// Group chats.
		{kind: "iq", types: get, payload: xml.Name{Space: nsDiscoInfo, Local: "query"}, to: toRoom, run: onLoop,
			handle: (*user).serveRoomInfo, features: []string{nsDiscoInfo}},
		{kind: "presence", types: []string{""}, to: inRoom, run: onLoop, handle: (*user).handleRoomPresence,
			features: []string{nsMUC, "muc_nonanonymous", "muc_open", "muc_temporary"}, service: []string{nsMUC}},
		{kind: "presence", types: []string{"unavailable"}, to: inRoom, run: onLoop, handle: (*user).leaveRoomPresence},
		{kind: "iq", types: getSet, payload: xml.Name{Space: nsMUCAdmin, Local: "query"}, to: inRoom, run: onLoop,
			handle: (*user).handleRoomAdmin},
		{kind: "iq", types: getSet, payload: xml.Name{Space: nsMUCOwner}, to: inRoom, run: onLoop,
			handle: (*user).refuseRoomConfig},
	}
}

// matches reports whether the row takes s, sent to an address of kind to.
func (r *routeRow) matches(s *inbound, to target) bool {
	if r.kind != s.XMLName.Local || r.to&to == 0 {
		return false
	}
	if len(r.types) > 0 && !slices.Contains(r.types, s.Type) {
		return false
	}
	if r.payload == (xml.Name{}) {
		return true
	}
	p := s.payload()
	return p.Space == r.payload.Space && (r.payload.Local == "" || p.Local == r.payload.Local)
}

// serveOn runs the rows of st that match s, in order, until
// one answers; it reports whether one did.
func (g *Gateway) serveOn(st where, s *inbound, to target) bool {
	for i := range g.routes {
		r := &g.routes[i]
		if r.run == st && r.matches(s, to) && r.serve(g, s) {
			return true
		}
	}
	return false
}

// loopRoute returns the loop row that takes ev, or nil.
func (g *Gateway) loopRoute(ev stanzaEvent) *routeRow {
	for i := range g.routes {
		r := &g.routes[i]
		if r.run == onLoop && r.matches(ev.s, ev.to) {
			return r
		}
	}
	return nil
}

// features lists, in table order and once each, the disco#info features of
// an address of kind to.
func (g *Gateway) features(to target) []string {
	var fs []string
	add := func(f string) {
		if !slices.Contains(fs, f) {
			fs = append(fs, f)
		}
	}
	for _, r := range g.routes {
		if r.to&to != 0 {
			for _, f := range r.features {
				add(f)
			}
		}
	}
	if to == toDomain && g.hasRooms() {
		for _, r := range g.routes {
			for _, f := range r.service {
				add(f)
			}
		}
	}
	return fs
}

// featureList is features as disco#info elements.
func (g *Gateway) featureList(to target) []info.Feature {
	var l []info.Feature
	for _, f := range g.features(to) {
		l = append(l, info.Feature{Var: f})
	}
	return l
}
