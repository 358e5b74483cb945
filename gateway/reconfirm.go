package gateway

import (
	"encoding/xml"
	"sort"
	"time"

	"mellium.im/xmpp/jid"
)

// confirmWait is how long, after the component connection came back, a
// resource the gateway knew has to show up again before it counts as gone.
const confirmWait = 10 * time.Second

// confirmResources ends the wait started by reconfirm; gen tells which.
type confirmResources struct{ gen uint64 }

// reconfirm asks the server who of the user is online after the component
// connection came back. The server may have restarted meanwhile without
// telling us who went offline (a crashed server sends no unavailable
// presence): a resource that does not answer the probe within confirmWait
// is taken as gone, so that it leaves its rooms and, if it was the last,
// the user is logged out of the legacy network.
func (u *user) reconfirm() {
	if len(u.resources.online) == 0 {
		return
	}
	u.resources.unconfirmed = make(map[string]bool, len(u.resources.online))
	for res := range u.resources.online {
		u.resources.unconfirmed[res] = true
	}
	u.resources.confirmGen++
	gen := u.resources.confirmGen
	_ = u.send(presenceOut{From: u.g.domain.String(), To: u.jid.String(), Type: "probe"})
	time.AfterFunc(confirmWait, func() {
		u.post(confirmResources{gen: gen})
	})
}

// confirmed notes that a resource spoke since the reconnection.
func (u *user) confirmed(res string) { delete(u.resources.unconfirmed, res) }

// dropUnconfirmed treats the resources that did not show up since the
// reconnection as gone offline.
func (u *user) dropUnconfirmed(ev confirmResources) {
	if ev.gen != u.resources.confirmGen {
		return
	}
	// The wait for the user ends here at the latest (see hold.go).
	defer u.release()
	if len(u.resources.unconfirmed) == 0 {
		return
	}
	gone := make([]string, 0, len(u.resources.unconfirmed))
	for res := range u.resources.unconfirmed {
		gone = append(gone, res)
	}
	sort.Strings(gone)
	u.resources.unconfirmed = nil
	for _, res := range gone {
		from, err := jid.Parse(res)
		if _, known := u.resources.online[res]; !known || err != nil {
			continue
		}
		u.log.Info("a resource did not answer after the reconnection: taking it as offline", "resource", res)
		for _, r := range u.sortedRooms() {
			if _, in := r.resources[res]; in {
				u.leaveRoom(r, res, "")
			}
		}
		u.resourcePresence(stanzaEvent{s: &inbound{XMLName: xml.Name{Local: "presence"}, FromRaw: res, Type: "unavailable", from: from}, to: toDomain})
	}
}
