package gateway

import (
	"context"
	"errors"
	"fmt"

	"passerelle.dev/passerelle/transports"
)

// handleUndeliverable takes a stanza that will never be written (too large
// even once cut, or dropped after the server closed the stream on it
// twice): it logs it and tells the user in a short notice from the
// transport, then reports true so the caller treats the event as handled
// and the transport moves on. Other errors are left to the caller.
func (u *user) handleUndeliverable(v any, err error) bool {
	var tl *tooLargeError
	var de *droppedError
	var why string
	switch {
	case errors.As(err, &tl):
		why = fmt.Sprintf("it is %s, over the limit of %s for one XMPP stanza", kb(tl.size), kb(tl.max))
	case errors.As(err, &de):
		why = fmt.Sprintf("the XMPP server closed the connection twice on it (%s)", kb(de.size))
	default:
		return false
	}
	from, to := stanzaAddresses(v)
	u.log.Warn("dropped a stanza that cannot be delivered", "err", err, "from", cutEscaped(from, 256), "to", to)
	switch m := v.(type) {
	case subjectOut:
	case messageOut:
		if m.Type == "error" {
			return true
		}
	default:
		return true // a presence or an iq answer: the log is enough
	}
	notice := messageOut{
		From: u.g.domain.String(), To: to, Type: "chat",
		Body: fmt.Sprintf("A message from %s could not be delivered: %s.", cutEscaped(from, 256), why),
	}
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	if err := u.g.conn.send(ctx, notice); err != nil {
		u.log.Warn("cannot tell the user about a dropped stanza", "err", err)
	}
	return true
}

// stanzaAddresses returns the from and to of the gateway's own stanzas.
func stanzaAddresses(v any) (from, to string) {
	switch s := v.(type) {
	case messageOut:
		return s.From, s.To
	case subjectOut:
		return s.From, s.To
	case presenceOut:
		return s.From, s.To
	case iqOut:
		return s.From, s.To
	}
	return "", ""
}

// dropLost counts a connection that ended under m before the server
// confirmed it (a *lostError). At the maxStanzaLosses-th, m is dropped
// rather than held and written again after every reconnection: the server
// most likely closed the stream because of it. It is logged, the user is
// told, and nil is returned so the transport moves on. Any other outcome
// is returned as it is.
func (u *user) dropLost(le *legacyEvent, m transports.Message, err error) error {
	var lost *lostError
	if !errors.As(err, &lost) {
		return err
	}
	if le.losses++; le.losses < maxStanzaLosses {
		return err
	}
	from, cerr := u.g.contactJID(m.From)
	if cerr != nil {
		from = u.g.domain.String()
	}
	u.g.metrics.limit("stanza_dropped")
	u.handleUndeliverable(messageOut{From: from, To: u.jid.String()}, &droppedError{kind: lost.kind, size: lost.size})
	return nil
}
