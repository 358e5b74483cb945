package transports

import "context"

// RoomTransport is implemented by transports whose networks have group
// chats. The gateway then serves the room addresses as multi-user chat rooms
// (XEP-0045) and expects the sessions to implement Rooms.
type RoomTransport interface {
	// IsRoom reports whether a canonical address (as ParseAddress returned
	// it) names a group chat rather than a contact.
	IsRoom(addr string) bool
}

// Scoper is implemented by room transports that reach several separate
// networks under one domain (IRC: one per server). When no resource of the
// user is online for the transport, the gateway delivers a chat message to
// the resources that are in rooms on the sender's network rather than to
// the bare JID. Without Scoper, all rooms are on one network.
type Scoper interface {
	// Scope names the network of a canonical address; "" means any
	// network (the transport itself, or an address it cannot place).
	Scope(addr string) string
}

// Rooms is the group-chat side of a Session. Each method only starts the
// operation and returns; the outcome arrives later as an event, so that no
// method waits for the network while the user's loop waits for it.
//
// Group-chat messages and subject changes go through Session.Send, as
// messages of type Groupchat addressed to the room.
type Rooms interface {
	// JoinRoom joins a room under a nickname. The outcome is RoomJoined or
	// RoomLeft with an error.
	JoinRoom(ctx context.Context, room, nick, password string) error
	// LeaveRoom leaves a room. The transport confirms nothing: the gateway
	// forgets the room at once.
	LeaveRoom(ctx context.Context, room, reason string) error
	// SetNick changes the user's nickname in a room (on some networks, in
	// every room). The outcome is Done with the same id, and on success
	// OccupantChanged events for the rooms concerned.
	SetNick(ctx context.Context, id, room, nick string) error
	// Moderate changes an occupant's role or affiliation (kick, ban, voice,
	// operator). The outcome is Done with the same id.
	Moderate(ctx context.Context, id, room string, m Moderation) error
}

// Role is an occupant's role in a room (XEP-0045).
type Role string

// Roles.
const (
	RoleNone        Role = "none"
	RoleVisitor     Role = "visitor"
	RoleParticipant Role = "participant"
	RoleModerator   Role = "moderator"
)

// Affiliation is an occupant's long-lived standing in a room (XEP-0045).
type Affiliation string

// Affiliations.
const (
	AffiliationNone    Affiliation = "none"
	AffiliationOutcast Affiliation = "outcast"
	AffiliationMember  Affiliation = "member"
	AffiliationAdmin   Affiliation = "admin"
	AffiliationOwner   Affiliation = "owner"
)

// Occupant is one member of a room.
type Occupant struct {
	Nick        string
	Role        Role
	Affiliation Affiliation
	// Show and Status carry the occupant's availability where the network
	// has it (away on IRC).
	Show   Show
	Status string
	// Address is the occupant's own legacy address, for private chats; empty
	// when unknown.
	Address string
}

// Moderation is a requested change to an occupant; an empty field is left
// as it is. Role none kicks; affiliation outcast bans.
type Moderation struct {
	Nick        string
	Role        Role
	Affiliation Affiliation
	Reason      string
}

// RoomJoined says that the user is in a room, with everyone in it: after a
// join, and again after the transport rejoined it (a reconnection), in which
// case it replaces what the gateway knew.
type RoomJoined struct {
	Room string
	// Nick is the user's own nickname in the room; it may differ from the
	// one asked for.
	Nick string
	// Occupants lists everyone in the room, the user included.
	Occupants []Occupant
	Subject   string
	// SubjectBy is the nickname that set the subject, if known.
	SubjectBy string
}

// OccupantChanged reports that one occupant joined, changed, or left a room.
// It concerns the user when Occupant.Nick is their own nickname.
type OccupantChanged struct {
	Room     string
	Occupant Occupant
	// Left is set when the occupant left the room (with Kicked or Banned
	// when they were removed, By the moderator's nickname).
	Left   bool
	Kicked bool
	Banned bool
	By     string
	Reason string
	// NewNick, when set, is the occupant's new nickname; the occupant
	// stays.
	NewNick string
}

// RoomSubject reports a new room subject.
type RoomSubject struct {
	Room    string
	Nick    string
	Subject string
}

// RoomLeft says that the user is not in a room, or could not join it: Err
// says why (its kind picks the XMPP error), Reason is a readable note.
type RoomLeft struct {
	Room   string
	Err    error
	Reason string
}

// Done is the outcome of an operation started with an id (Rooms.SetNick,
// Rooms.Moderate).
type Done struct {
	ID  string
	Err error
}

func (RoomJoined) event()      {}
func (OccupantChanged) event() {}
func (RoomSubject) event()     {}
func (RoomLeft) event()        {}
func (Done) event()            {}
