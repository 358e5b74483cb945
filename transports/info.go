package transports

import "time"

// Info describes a transport to users and to service discovery.
type Info struct {
	// Type is the disco identity type in the "gateway" category, from the
	// XMPP registrar (for example "irc" or "smtp").
	Type string
	// Name is a human-readable name, such as "IRC".
	Name string
	// Instructions tell the user what to enter in the registration form.
	Instructions string
	// Fields are the registration form fields, in display order.
	Fields []Field
	// AddressPrompt describes a legacy address for jabber:iq:gateway
	// (XEP-0100), for example "Email address of the contact".
	AddressPrompt string
	// AddressDesc is a longer explanation of AddressPrompt.
	AddressDesc string
	// AlwaysOn asks the gateway to keep every registered user logged in,
	// online in XMPP or not: what arrives meanwhile goes to the user's bare
	// JID, for the XMPP server's offline storage.
	AlwaysOn bool
	// Limits are the transport's suggested per-user limits; the admin's
	// config overrides them.
	Limits Limits
}

// FieldKeepRooms names a Bool registration field that a transport with
// rooms may offer: when it is true, the user's rooms stay joined on the
// network while the user is offline.
const FieldKeepRooms = "keep_rooms"

// FieldKind is the type of a registration field.
type FieldKind int

// Field kinds. Secret fields are encrypted at rest and never shown back.
const (
	Text FieldKind = iota
	Secret
	Bool
	List
)

// Field is one registration form field.
type Field struct {
	Name     string
	Label    string
	Desc     string
	Kind     FieldKind
	Required bool
	// Default is offered to a new user and used when the field is left
	// empty.
	Default string
	// Options are the choices of a List field.
	Options []Option
	// BoundTo names the fields a Secret field is bound to: the server or
	// network it was given for. When a registered user changes any of them
	// (compared case-insensitively, after trimming and defaults) and leaves
	// the secret empty, the gateway refuses the whole update and asks for
	// the secret again, so a stored secret never goes to a server the user
	// did not give it for.
	BoundTo []string
}

// Option is one choice of a List field.
type Option struct {
	Label string
	Value string
}

// Field returns the field named name, if the transport has one.
func (i Info) Field(name string) (Field, bool) {
	for _, f := range i.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Limits bound what one user can make a transport do, so that one account
// cannot get the gateway banned from a network or use it as a relay. A zero
// field means "no opinion": the admin's config, then the transport's
// suggestion (Info.Limits), then the gateway's default apply.
type Limits struct {
	// MessagesPerMinute is the sustained rate of messages one user may send
	// to the network; Burst is how many may go at once.
	MessagesPerMinute float64
	Burst             int
	// MaxMessageBytes bounds a message's body plus subject, in bytes.
	MaxMessageBytes int
	// MaxRooms bounds the rooms one user is in at once.
	MaxRooms int
	// MaxContacts bounds the legacy contacts one user keeps in the roster.
	MaxContacts int
	// MaxRegistrations bounds the users registered with the transport; zero
	// is unlimited.
	MaxRegistrations int
	// RegistrationAttempts bounds the registration attempts one user may
	// make in RegistrationWindow: each attempt that goes to the transport
	// (and so, possibly, to the network) counts, accepted or not.
	RegistrationAttempts int
	RegistrationWindow   time.Duration
}

// Or returns l with each zero field taken from d.
func (l Limits) Or(d Limits) Limits {
	if l.MessagesPerMinute == 0 {
		l.MessagesPerMinute = d.MessagesPerMinute
	}
	if l.Burst == 0 {
		l.Burst = d.Burst
	}
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = d.MaxMessageBytes
	}
	if l.MaxRooms == 0 {
		l.MaxRooms = d.MaxRooms
	}
	if l.MaxContacts == 0 {
		l.MaxContacts = d.MaxContacts
	}
	if l.MaxRegistrations == 0 {
		l.MaxRegistrations = d.MaxRegistrations
	}
	if l.RegistrationAttempts == 0 {
		l.RegistrationAttempts = d.RegistrationAttempts
	}
	if l.RegistrationWindow == 0 {
		l.RegistrationWindow = d.RegistrationWindow
	}
	return l
}
