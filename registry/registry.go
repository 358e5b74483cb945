// Package registry owns everything Passerelle keeps on disk: users'
// registrations with transports, their legacy contacts and per-registration
// transport state, with the schema version and its migrations.
//
// Store is the interface the gateway uses; Open returns the bbolt
// implementation, which keeps everything in one file and encrypts secret
// registration values with an AEAD key kept in a separate key file.
package registry

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a registration does not exist.
var ErrNotFound = errors.New("registry: not found")

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("registry: database is in use by another process (is a gateway running?)")

// Registration is one XMPP user's registration with one transport.
type Registration struct {
	// User is the bare JID of the XMPP user.
	User string
	// Transport is the transport's component domain.
	Transport string
	// Fields holds the plain registration values.
	Fields map[string]string
	// Secrets holds the secret registration values (passwords). They are
	// encrypted at rest; in memory they are plain.
	Secrets map[string]string
	Created time.Time
	Updated time.Time
	// Corrupt, set only in listings with IncludeCorrupt, says why the
	// stored record could not be read; the other fields are then empty
	// but User and Transport, enough to remove it.
	Corrupt string
}

// Contact is a legacy address known to a user on one transport: the address
// mapping between the canonical legacy address and how it is shown.
type Contact struct {
	// Address is the canonical legacy address.
	Address string
	// Name is the display form (for example the nick's original case).
	Name string
	// Subscribed is true when the user has subscribed to the contact's
	// presence.
	Subscribed bool
}

// ListOptions selects and pages registrations.
type ListOptions struct {
	// Transport, if set, restricts the list to one transport domain.
	Transport string
	// User, if set, restricts the list to one user.
	User string
	// After skips users up to and including this bare JID (for paging).
	After string
	// Limit stops the list at the first user whose registrations reach
	// this many in all (a user is never split across pages); 0 means no limit.
	Limit int
	// IncludeCorrupt lists records that do not decode, with Corrupt set,
	// instead of skipping them (they are logged either way).
	IncludeCorrupt bool
}

// Store is the gateway's persistent storage.
type Store interface {
	// PutRegistration creates or replaces a registration, keeping Created
	// of an existing one.
	PutRegistration(ctx context.Context, r Registration) error
	// Registration returns a registration or ErrNotFound.
	Registration(ctx context.Context, user, transport string) (Registration, error)
	// Registrations lists registrations ordered by user, then transport.
	// Secrets are left empty.
	Registrations(ctx context.Context, opts ListOptions) ([]Registration, error)
	// DeleteRegistration removes a registration with its contacts and state,
	// and the user when no registration is left. ErrNotFound if absent.
	DeleteRegistration(ctx context.Context, user, transport string) error

	// PutContact creates or replaces a contact of a registration.
	PutContact(ctx context.Context, user, transport string, c Contact) error
	// Contacts lists a registration's contacts ordered by address.
	Contacts(ctx context.Context, user, transport string) ([]Contact, error)
	// DeleteContact removes a contact; a missing one is not an error.
	DeleteContact(ctx context.Context, user, transport, address string) error

	// State returns a registration's state value, or nil if unset.
	State(ctx context.Context, user, transport, key string) ([]byte, error)
	// PutState stores a registration's state value durably.
	PutState(ctx context.Context, user, transport, key string, value []byte) error
	// DeleteState removes a state value; a missing one is not an error.
	DeleteState(ctx context.Context, user, transport, key string) error

	// Close releases the store.
	Close() error
}
