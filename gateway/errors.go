package gateway

import (
	"errors"

	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// transportError maps a transport error to the stanza error users see. It is
// the one place where legacy failures get an XMPP meaning.
func transportError(err error) stanza.Error {
	text := userText(err)
	switch transports.KindOf(err) {
	case transports.BadRequest:
		return stanzaErr(stanza.Modify, stanza.BadRequest, text)
	case transports.BadAddress:
		return stanzaErr(stanza.Modify, stanza.JIDMalformed, text)
	case transports.NotAuthorized:
		return stanzaErr(stanza.Auth, stanza.NotAuthorized, text)
	case transports.Forbidden:
		return stanzaErr(stanza.Auth, stanza.Forbidden, text)
	case transports.Unreachable:
		return stanzaErr(stanza.Wait, stanza.RemoteServerTimeout, text)
	case transports.NotFound:
		return stanzaErr(stanza.Cancel, stanza.ItemNotFound, text)
	case transports.RateLimited:
		return stanzaErr(stanza.Wait, stanza.PolicyViolation, text)
	case transports.NotConnected:
		return stanzaErr(stanza.Wait, stanza.RecipientUnavailable, text)
	case transports.Unsupported:
		return stanzaErr(stanza.Cancel, stanza.FeatureNotImplemented, text)
	default:
		return stanzaErr(stanza.Wait, stanza.InternalServerError, "Internal gateway error; the administrator can find details in the log.")
	}
}

// userText is the part of err that may be shown to the user: the text of a
// transport error, never the wrapped cause (which may name internal details).
func userText(err error) string {
	var te *transports.Error
	if errors.As(err, &te) && te.Text != "" {
		return te.Text
	}
	return "internal error"
}
