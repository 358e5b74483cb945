package transports

import (
	"errors"
	"fmt"
)

// ErrorKind classifies a transport error; the gateway maps each kind to one
// XMPP stanza error condition.
type ErrorKind int

// Error kinds.
const (
	// Internal is an unexpected failure in the gateway or the transport.
	Internal ErrorKind = iota
	// BadRequest is a malformed or incomplete request.
	BadRequest
	// BadAddress is an illegal or unknown legacy address.
	BadAddress
	// NotAuthorized means the legacy network refused the credentials.
	NotAuthorized
	// Forbidden means the action is not allowed for this user.
	Forbidden
	// Unreachable means the legacy server could not be reached.
	Unreachable
	// NotFound means the legacy recipient does not exist.
	NotFound
	// RateLimited means a limit on traffic or size was hit.
	RateLimited
	// NotConnected means the user has no live legacy session.
	NotConnected
	// Unsupported means the transport cannot do this.
	Unsupported
	// Conflict means a name (a nickname) is already taken.
	Conflict
	// RegistrationRequired means the user must be invited or registered
	// with the legacy service (an invite-only room).
	RegistrationRequired
	// Unavailable means the legacy service cannot take the user now (a
	// full room).
	Unavailable
)

// Error is an error with a meaning the gateway can report to XMPP users.
type Error struct {
	Kind ErrorKind
	// Text is shown to the user; it must not contain secrets.
	Text string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Err == nil:
		return e.Text
	case e.Text == "":
		return e.Err.Error()
	default:
		return e.Text + ": " + e.Err.Error()
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind whose user-visible text is the
// formatted message. A %w verb wraps an underlying error for logs.
func Errorf(kind ErrorKind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Text: err.Error(), Err: errors.Unwrap(err)}
}

// KindOf returns the kind of err, or Internal if it carries none.
func KindOf(err error) ErrorKind {
	var te *Error
	if errors.As(err, &te) {
		return te.Kind
	}
	return Internal
}

// TextOf returns the text of err that users may see, if err is an *Error
// with one.
func TextOf(err error) (string, bool) {
	var te *Error
	if errors.As(err, &te) && te.Text != "" {
		return te.Text, true
	}
	return "", false
}
