// Package transports defines the contract between the gateway core and one
// legacy network: Transport and Session, the events a session delivers
// through its Sink, the errors, and the State store a transport keeps its
// own data in. It holds no state. A network is one package that implements
// Transport; the core never imports a concrete transport.
package transports

import (
	"context"
	"log/slog"
)

// Transport is one kind of legacy network configured for one component domain.
// Its methods may be called concurrently for different users.
type Transport interface {
	// Info describes the transport for service discovery and registration.
	Info() Info

	// ParseAddress checks a legacy address (decoded from a JID localpart, or
	// typed by a user through jabber:iq:gateway) and returns its canonical
	// form. An invalid address yields an error of kind BadAddress.
	ParseAddress(addr string) (string, error)

	// Register validates a registration form submission, proves the
	// credentials against the legacy network where it can, and returns the
	// values to store. Nothing is stored when it returns an error.
	Register(ctx context.Context, req RegisterRequest) (Values, error)

	// Login opens a legacy session for a registered user. The session reports
	// back through req.Events until Close returns.
	Login(ctx context.Context, req LoginRequest) (Session, error)
}

// Session is one registered user's connection to the legacy network.
//
// Its methods are called from the user's event loop, one at a time, so they
// must not wait for that loop (for example by delivering an event
// synchronously before returning).
type Session interface {
	// Send sends a message from the user to a legacy address.
	Send(ctx context.Context, m Message) error
	// SetPresence carries the user's own availability and status to the
	// legacy network, where it has such a notion.
	SetPresence(ctx context.Context, p Presence) error
	// Close logs the user out of the legacy network and releases resources.
	Close(ctx context.Context) error
}

// ContactWatcher is implemented by sessions that report the presence of
// the contacts in the user's roster: they start with LoginRequest.Contacts
// and the gateway tells them of each contact added or removed.
type ContactWatcher interface {
	Watch(ctx context.Context, addr string, on bool) error
}

// RegisterRequest is a submitted registration form.
type RegisterRequest struct {
	// User is the bare JID of the XMPP user.
	User string
	// Values holds the submitted fields, by Field.Name.
	Values Values
	// Previous holds the stored values when the user is already registered.
	Previous Values
}

// LoginRequest carries what a transport needs to log a user in.
type LoginRequest struct {
	// User is the bare JID of the XMPP user.
	User string
	// Values are the stored registration values, secrets decrypted.
	Values Values
	// Presence is the user's presence at login.
	Presence Presence
	// Contacts are the legacy addresses in the user's roster, whose
	// presence the user follows (see ContactWatcher).
	Contacts []string
	// State is storage that survives restarts, private to this registration.
	State State
	// Events receives everything the legacy network sends to the user.
	Events Sink
	// Logger is scoped to the user and transport.
	Logger *slog.Logger
}

// Values are registration field values by field name.
type Values map[string]string

// State is a small persistent key-value store for one registration, such as
// the rooms to rejoin or the last mail UID delivered.
type State interface {
	// Get returns the value stored under key, or nil if there is none.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key, durably.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; removing a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Sink receives events from a legacy session.
type Sink interface {
	// Deliver hands ev to the user's event loop and returns once the
	// resulting stanzas have been written to the XMPP server, or with an error
	// if that was not possible (context done, gateway shutting down). A
	// stanza that can never be written (over the gateway's stanza bound even
	// once cut, or one the server closed the stream on twice) is dropped and
	// the user told; Deliver then returns nil, so a transport moves on and
	// never hands the same poison event over again.
	Deliver(ctx context.Context, ev Event) error
}
