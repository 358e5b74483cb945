package testnet

import (
	"context"
	"strings"

	"passerelle.dev/passerelle/transports"
)

// RoomNetwork is the test network with group chats: an address whose name
// starts with '#' is a room, and the host of an address names its network
// (transports.Scoper), as IRC servers do. Sessions join any room at once,
// alone in it; a test speaks in it with Session.Inject.
type RoomNetwork struct {
	*Network
}

// WithRooms returns n with group chats.
func (n *Network) WithRooms() RoomNetwork { return RoomNetwork{n} }

// Info implements transports.Transport; it offers keeping rooms joined
// while the user is offline.
func (r RoomNetwork) Info() transports.Info {
	info := r.Network.Info()
	info.Fields = append(info.Fields, transports.Field{Name: transports.FieldKeepRooms, Label: "Stay in rooms while offline", Kind: transports.Bool, Default: "false"})
	return info
}

// IsRoom implements transports.RoomTransport.
func (r RoomNetwork) IsRoom(addr string) bool { return strings.HasPrefix(addr, "#") }

// Scope implements transports.Scoper: the host part of the address.
func (r RoomNetwork) Scope(addr string) string {
	if _, host, ok := strings.Cut(addr, "@"); ok {
		return host
	}
	return addr
}

// Login implements transports.Transport.
func (r RoomNetwork) Login(ctx context.Context, req transports.LoginRequest) (transports.Session, error) {
	s, err := r.Network.Login(ctx, req)
	if err != nil {
		return nil, err
	}
	return roomSession{s.(*Session)}, nil
}

// roomSession is a Session with transports.Rooms.
type roomSession struct {
	*Session
}

func (s roomSession) JoinRoom(_ context.Context, room, nick, _ string) error {
	s.Inject(transports.RoomJoined{Room: room, Nick: nick, Occupants: []transports.Occupant{
		{Nick: nick, Role: transports.RoleParticipant, Affiliation: transports.AffiliationNone},
	}})
	return nil
}

func (s roomSession) LeaveRoom(context.Context, string, string) error { return nil }

func (s roomSession) SetNick(_ context.Context, id, _, _ string) error {
	s.Inject(transports.Done{ID: id, Err: transports.Errorf(transports.Unsupported, "the test network keeps nicknames")})
	return nil
}

func (s roomSession) Moderate(_ context.Context, id, _ string, _ transports.Moderation) error {
	s.Inject(transports.Done{ID: id, Err: transports.Errorf(transports.Unsupported, "the test network has no moderation")})
	return nil
}
