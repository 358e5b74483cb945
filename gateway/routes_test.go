package gateway

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"passerelle.dev/passerelle/internal/testnet"
)

// funcName names a row's handler, for comparing rows.
func funcName(f any) string {
	if reflect.ValueOf(f).IsNil() {
		return ""
	}
	name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}

// withRooms is the test network with group chats.
type withRooms struct{ *testnet.Network }

func (withRooms) IsRoom(addr string) bool { return strings.HasPrefix(addr, "#") }

// The features derived from the table are the lists the gateway advertised
// before the table existed, in the same order.
func TestRouteFeatures(t *testing.T) {
	g := &Gateway{routes: routeTable()}
	domain := []string{nsDiscoInfo, nsDiscoItems, nsPing, nsVersion, nsRegister, nsGateway, nsDataForms, nsCommands}
	if got := g.features(toDomain); !slices.Equal(got, domain) {
		t.Errorf("domain features without rooms:\n got %q\nwant %q", got, domain)
	}
	if got := g.features(toContact); !slices.Equal(got, []string{nsDiscoInfo}) {
		t.Errorf("contact features: %q", got)
	}
	room := []string{nsDiscoInfo, nsMUC, "muc_nonanonymous", "muc_open", "muc_temporary"}
	if got := g.features(toRoom); !slices.Equal(got, room) {
		t.Errorf("room features:\n got %q\nwant %q", got, room)
	}
	g.cfg.Transport = withRooms{testnet.New()}
	if got := g.features(toDomain); !slices.Equal(got, append(domain, nsMUC)) {
		t.Errorf("domain features with rooms: %q", got)
	}
}

// Each kind of stanza reaches the handler it reached before the table, on
// the same goroutine; what no row takes is answered or dropped by the caller.
func TestRouteTable(t *testing.T) {
	g := &Gateway{routes: routeTable()}
	for _, c := range []struct {
		raw  string
		to   target
		want string // the handler of the first row taking it, on the stages in order
	}{
		{`<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, toDomain, "serveDiscoInfo"},
		{`<iq type='get'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`, toDomain, "serveDiscoItems"},
		{`<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>`, toDomain, "servePing"},
		{`<iq type='get'><query xmlns='jabber:iq:version'/></iq>`, toDomain, "serveVersion"},
		{`<iq type='set'><query xmlns='jabber:iq:version'/></iq>`, toDomain, ""},
		{`<iq type='result'><query xmlns='jabber:iq:register'/></iq>`, toDomain, ""},
		{`<iq type='set'><query xmlns='jabber:iq:register'/></iq>`, toDomain, "handleRegister"},
		{`<iq type='get'><query xmlns='jabber:iq:register'/></iq>`, toContact, ""},
		{`<iq type='set'><query xmlns='jabber:iq:gateway'/></iq>`, toDomain, "serveGatewayIQ"},
		{`<iq type='set'><command xmlns='http://jabber.org/protocol/commands'/></iq>`, toDomain, "handleAdhoc"},
		{`<iq type='get'><command xmlns='http://jabber.org/protocol/commands'/></iq>`, toDomain, ""},
		{`<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, toContact, "serveContactInfo"},
		{`<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, toRoom, "serveRoomInfo"},
		{`<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, toOccupant, ""},
		{`<iq type='set'><query xmlns='http://jabber.org/protocol/muc#admin'/></iq>`, toOccupant, "handleRoomAdmin"},
		{`<iq type='get'><x xmlns='http://jabber.org/protocol/muc#owner'/></iq>`, toRoom, "refuseRoomConfig"},
		{`<presence/>`, toDomain, "resourcePresence"},
		{`<presence type='error'/>`, toContact, "resourcePresence"},
		{`<presence type='probe'/>`, toContact, "answerProbe"},
		{`<presence type='subscribe'/>`, toContact, "subscribe"},
		{`<presence type='unsubscribe'/>`, toDomain, "unsubscribe"},
		{`<presence type='subscribed'/>`, toDomain, "approvedTransport"},
		{`<presence type='subscribed'/>`, toContact, ""},
		{`<presence type='unsubscribed'/>`, toDomain, ""},
		{`<presence><x xmlns='http://jabber.org/protocol/muc'/></presence>`, toOccupant, "handleRoomPresence"},
		{`<presence type='unavailable'/>`, toRoom, "leaveRoomPresence"},
		{`<presence type='subscribe'/>`, toRoom, ""},
		{`<message type='error'/>`, toRoom, "bouncedByClient"},
		{`<message><body>help</body></message>`, toDomain, "handleChatCommand"},
		{`<message type='headline'/>`, toDomain, "refuseDomainMessage"},
		{`<message type='bogus'/>`, toDomain, "refuseDomainMessage"},
		{`<message type='groupchat'/>`, toContact, "refuseGroupchat"},
		{`<message type='chat'><body>hi</body></message>`, toContact, "handleMessage"},
		{`<message type='groupchat'/>`, toRoom, "handleRoomMessage"},
		{`<message type='chat'/>`, toOccupant, "handleRoomMessage"},
	} {
		s := parse(t, c.raw)
		got := ""
		for _, st := range []where{onPublic, onReader, onLoop} {
			for i := range g.routes {
				r := &g.routes[i]
				if r.run == st && r.matches(s, c.to) && got == "" {
					got = funcName(r.serve) + funcName(r.handle)
				}
			}
		}
		if got != c.want {
			t.Errorf("%s to %b: handler %q, want %q", c.raw, c.to, got, c.want)
		}
	}
}

// Reader rows answer without the user's state, loop rows with it: each row
// has the handler of its goroutine and no other.
func TestRouteRowsRunWhereTheySay(t *testing.T) {
	for i, r := range routeTable() {
		reader := r.run == onPublic || r.run == onReader
		if reader != (r.serve != nil) || reader == (r.handle != nil) {
			t.Errorf("row %d (%s %v %v): run %d with serve %v, handle %v", i, r.kind, r.types, r.payload, r.run, r.serve != nil, r.handle != nil)
		}
		if r.run == onPublic && r.to != toDomain {
			t.Errorf("row %d: a public row may only answer for the transport domain", i)
		}
	}
}
