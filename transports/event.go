package transports

// Event is something a legacy session reports to the user: one of Message,
// Presence, Status or SendFailure.
type Event interface{ event() }

// MessageType is the kind of a chat message.
type MessageType string

// Message types, as in XMPP.
const (
	Chat     MessageType = "chat"
	Normal   MessageType = "normal"
	Headline MessageType = "headline"
)

// Message is a message between the user and a legacy address. Outgoing, To is
// the legacy address; incoming, From is. An empty From means the transport
// itself (the component domain) speaks.
type Message struct {
	From    string
	To      string
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
