package gateway

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"golang.org/x/time/rate"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// defaultLimits apply where neither the config nor the transport set a
// limit.
var defaultLimits = transports.Limits{
	MessagesPerMinute: 60,
	Burst:             10,
	MaxMessageBytes:   64 << 10,
	MaxRooms:          100,
	MaxContacts:       1000,
	// Each attempt may connect to a server the user names: few of them.
	RegistrationAttempts: 5,
	RegistrationWindow:   10 * time.Minute,
}

// checkMessage enforces the size and rate limits on a message the user
// sends to the network. It answers s with an error and returns false when
// the message may not go.
func (u *user) checkMessage(s *inbound, body, subject string) bool {
	lim := u.g.limits
	if n := len(body) + len(subject); n > lim.MaxMessageBytes {
		u.g.metrics.limit("size")
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.NotAcceptable,
			fmt.Sprintf("The message is too long: %d bytes, at most %d.", n, lim.MaxMessageBytes)))
		return false
	}
	if u.session.limiter == nil {
		u.session.limiter = rate.NewLimiter(rate.Limit(lim.MessagesPerMinute/60), lim.Burst)
	}
	if u.session.limiter.Allow() {
		return true
	}
	u.g.metrics.limit("rate")
	every := time.Duration(float64(time.Minute) / lim.MessagesPerMinute)
	u.g.replyError(s, stanzaErr(stanza.Wait, stanza.ResourceConstraint,
		fmt.Sprintf("Too many messages: at most %s a minute to %s. Try again in %s.",
			trimFloat(lim.MessagesPerMinute), u.g.info.Name, every.Round(100*time.Millisecond))))
	return false
}

// registrationAllowed counts a registration attempt against the user's
// limit. It returns an error for the user when the attempt may not go.
func (u *user) registrationAllowed() *stanza.Error {
	lim := u.g.limits
	ok, wait := u.g.attempts.take(u.jid.String(), time.Now(), lim.RegistrationAttempts, lim.RegistrationWindow)
	if ok {
		return nil
	}
	u.g.metrics.limit("registration_attempts")
	text := fmt.Sprintf("Too many registration attempts: at most %d in %s. Try again in %s.",
		lim.RegistrationAttempts, shortDuration(lim.RegistrationWindow), shortDuration(wait.Round(time.Second)))
	if wait == 0 {
		text = "Too many registration attempts on " + u.g.cfg.Name + " right now. Try again in " + shortDuration(lim.RegistrationWindow) + "."
	}
	e := stanzaErr(stanza.Wait, stanza.ResourceConstraint, text)
	return &e
}

// roomAllowed reports whether the user may join one more room.
func (u *user) roomAllowed() bool {
	if len(u.rooms.joined) < u.g.limits.MaxRooms {
		return true
	}
	u.g.metrics.limit("rooms")
	return false
}

// contactAllowed reports whether the user may add the legacy contact addr
// to the roster: one already stored is always allowed, a new one only
// below the limit. Otherwise it says why.
func (u *user) contactAllowed(addr string) (bool, string) {
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	cs, err := u.g.cfg.Store.Contacts(ctx, u.jid.String(), u.g.domain.String())
	if err != nil {
		return false, fmt.Sprintf("cannot read your contacts: %v", err)
	}
	if len(cs) < u.g.limits.MaxContacts {
		return true, ""
	}
	for _, c := range cs {
		if c.Address == addr {
			return true, ""
		}
	}
	u.g.metrics.limit("contacts")
	return false, fmt.Sprintf("You have %d contacts on %s, the most allowed: remove one before adding %s.", len(cs), u.g.cfg.Name, addr)
}

// reserveRegistration checks the limit on registered users before a new
// user's registration and holds a place for it; release gives it back. It
// returns false when the transport is full.
func (u *user) reserveRegistration() (ok bool, release func()) {
	max := u.g.limits.MaxRegistrations
	if max <= 0 || u.reg != nil {
		return true, func() {}
	}
	pending := u.g.newRegistrations.Add(1)
	release = func() { u.g.newRegistrations.Add(-1) }
	n := 0
	err := u.g.eachRegistration(u.ctx, func(registry.Registration) error { n++; return nil })
	if err != nil {
		u.log.Warn("cannot count the registrations", "err", err)
	}
	if n+int(pending) > max {
		release()
		u.g.metrics.limit("registrations")
		return false, nil
	}
	return true, release
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.2g", f)
}

// shortDuration writes 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
