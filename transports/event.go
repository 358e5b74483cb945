package transports

// Event is something a legacy session reports to the user: one of Message,
// Presence, Status, SendFailure, or the room events of room.go.
type Event interface{ event() }

// MessageType is the kind of a chat message.
type MessageType string

// Message types, as in XMPP.
const (
	Chat     MessageType = "chat"
	Normal   MessageType = "normal"
	Headline MessageType = "headline"
	// Groupchat is a message to or from a room (see Rooms).
	Groupchat MessageType = "groupchat"
)

// Message is a message between the user and a legacy address. Outgoing, To is
// the legacy address; incoming, From is. An empty From means the transport
// itself (the component domain) speaks.
//
// In a room (Type Groupchat, From or To the room), Nick is the sender's
// nickname; an incoming one without Nick is a note from the room itself. A
// Chat message to a room with Nick set is a private message to that
// occupant.
type Message struct {
	From    string
	To      string
	Nick    string
	ID      string
	Type    MessageType
	Body    string
	Subject string
	Thread  string
}

// Show is the XMPP availability sub-state.
type Show string

// Availability sub-states. ShowNone means plainly available.
const (
	ShowNone Show = ""
	ShowAway Show = "away"
	ShowChat Show = "chat"
	ShowDND  Show = "dnd"
	ShowXA   Show = "xa"
)

// Presence is the availability of the user (outgoing) or of a legacy contact
// (incoming, From set).
type Presence struct {
	From      string
	Available bool
	Show      Show
	Status    string
}

// Status reports the state of the user's legacy session as a whole; the
// gateway shows it as the presence of the transport itself.
type Status struct {
	Connected bool
	// Show refines an available status; a disconnected session is shown
	// as "xa" with Message as the reason.
	Show    Show
	Message string
}

// SendFailure reports that an earlier outgoing Message, by its ID, could not
// be delivered after Send returned.
type SendFailure struct {
	To  string
	ID  string
	Err error
}

func (Message) event()     {}
func (Presence) event()    {}
func (Status) event()      {}
func (SendFailure) event() {}
