package gateway

import (
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// errorConditions gives each kind of transport error its XMPP meaning; it is
// the one place where legacy failures are translated.
var errorConditions = map[transports.ErrorKind]struct {
	typ  stanza.ErrorType
	cond stanza.Condition
}{
	transports.BadRequest:    {stanza.Modify, stanza.BadRequest},
	transports.BadAddress:    {stanza.Modify, stanza.JIDMalformed},
	transports.NotAuthorized: {stanza.Auth, stanza.NotAuthorized},
	transports.Forbidden:     {stanza.Auth, stanza.Forbidden},
	transports.Unreachable:   {stanza.Wait, stanza.RemoteServerTimeout},
	transports.NotFound:      {stanza.Cancel, stanza.ItemNotFound},
	transports.RateLimited:   {stanza.Wait, stanza.PolicyViolation},
	transports.NotConnected:  {stanza.Wait, stanza.RecipientUnavailable},
	transports.Unsupported:   {stanza.Cancel, stanza.FeatureNotImplemented},
	transports.Conflict:      {stanza.Cancel, stanza.Conflict},
	transports.Unavailable:   {stanza.Wait, stanza.ServiceUnavailable},

	transports.RegistrationRequired: {stanza.Auth, stanza.RegistrationRequired},
}

// transportError maps a transport error to the stanza error users see.
// Anything without a kind is internal, and its details stay in the log.
func transportError(err error) stanza.Error {
	if c, ok := errorConditions[transports.KindOf(err)]; ok {
		return stanzaErr(c.typ, c.cond, userText(err))
	}
	return stanzaErr(stanza.Wait, stanza.InternalServerError, "Internal gateway error; the administrator can find details in the log.")
}

// userText is the part of err that may be shown to the user: the text of a
// transport error, never the wrapped cause (which may name internal details).
func userText(err error) string {
	if text, ok := transports.TextOf(err); ok {
		return text
	}
	return "internal error"
}
