package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// roomsKey is the registry state key, in the gateway's own namespace, under
// which the user's rooms are kept, so that a restarted gateway rejoins them.
const roomsKey = "gateway.rooms"

// savedRoom is a room as kept across restarts. The room password is not
// kept: the state is not encrypted.
type savedRoom struct {
	JID       string   `json:"jid"`
	Nick      string   `json:"nick"`
	Resources []string `json:"resources"`
}

func (u *user) loadRooms() {
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	raw, err := u.g.cfg.Store.State(ctx, u.jid.String(), u.g.domain.String(), roomsKey)
	switch {
	case errors.Is(err, registry.ErrNotFound) || (err == nil && raw == nil):
		return
	case err != nil:
		u.log.Error("cannot read the saved rooms", "err", err)
		return
	}
	if err := json.Unmarshal(raw, &u.rooms.saved); err != nil {
		u.log.Error("saved rooms are unreadable; they will not be rejoined", "err", err)
		u.rooms.saved = nil
	}
}

// saveRoom records r as joined by its resources, keeping those of the saved
// ones that have not shown up since the gateway started.
func (u *user) saveRoom(r *room) {
	if !r.joined {
		return
	}
	sr := savedRoom{JID: r.jid, Nick: r.nick}
	for res := range r.resources {
		sr.Resources = append(sr.Resources, res)
	}
	for _, res := range u.rooms.saved[r.addr].Resources {
		if _, in := r.resources[res]; !in && !u.resources.seen[res] {
			sr.Resources = append(sr.Resources, res)
		}
	}
	sort.Strings(sr.Resources)
	if old, ok := u.rooms.saved[r.addr]; ok && old.JID == sr.JID && old.Nick == sr.Nick && slices.Equal(old.Resources, sr.Resources) {
		return
	}
	if u.rooms.saved == nil {
		u.rooms.saved = make(map[string]savedRoom)
	}
	u.rooms.saved[r.addr] = sr
	u.storeRooms()
}

// forgetRoom stops rejoining a room.
func (u *user) forgetRoom(addr string) {
	if _, ok := u.rooms.saved[addr]; !ok {
		return
	}
	delete(u.rooms.saved, addr)
	u.storeRooms()
}

func (u *user) storeRooms() {
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	var err error
	if len(u.rooms.saved) == 0 {
		err = u.g.cfg.Store.DeleteState(ctx, u.jid.String(), u.g.domain.String(), roomsKey)
	} else {
		raw, _ := json.Marshal(u.rooms.saved)
		err = u.g.cfg.Store.PutState(ctx, u.jid.String(), u.g.domain.String(), roomsKey, raw)
	}
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		u.log.Error("cannot save the user's rooms", "err", err)
	}
}

// rejoinSaved puts a resource that shows up for the first time since the
// gateway started back into the rooms it was in.
func (u *user) rejoinSaved(res string) {
	if u.resources.seen[res] {
		return
	}
	u.resources.seen[res] = true
	addrs := make([]string, 0, len(u.rooms.saved))
	for addr := range u.rooms.saved {
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	for _, addr := range addrs {
		sr := u.rooms.saved[addr]
		if !slices.Contains(sr.Resources, res) {
			continue
		}
		r := u.rooms.joined[addr]
		if r == nil {
			u.log.Info("rejoining a room", "room", addr)
			r = &room{addr: addr, jid: sr.JID, nick: sr.Nick, resources: map[string]string{res: sr.Nick}, occupants: make(map[string]transports.Occupant)}
			u.rooms.joined[addr] = r
			u.joinRoom(r)
			continue
		}
		if _, in := r.resources[res]; !in {
			r.resources[res] = sr.Nick
			if r.joined {
				u.sendRoomState(r, res)
			}
		}
	}
}
