package irc

import (
	"strings"

	"github.com/lrstanley/girc"

	"passerelle.dev/passerelle/transports"
)

// Kinds of requests the server confirms or refuses.
const (
	reqNick = iota
	reqKick
	reqMode
)

// request is an operation waiting for the server's answer: a NICK, KICK or
// MODE echoed back means success, a numeric error means failure.
type request struct {
	id      string
	kind    int
	channel string // case-folded
	target  string // case-folded nick
	mode    string // "+o", "-v", "+b"... for reqMode
}

func (n *network) request(r *request) {
	n.requests[r.id] = r
	n.s.after(requestTTL, requestTimeout{n.name, r.id})
}

// finish reports a request's outcome to the gateway.
func (n *network) finish(r *request, err error) {
	if r == nil {
		return
	}
	delete(n.requests, r.id)
	n.s.deliver(transports.Done{ID: r.id, Err: err})
}

// expire fails a request the server never answered.
func (n *network) expire(id string) {
	if r := n.requests[id]; r != nil {
		n.finish(r, transports.Errorf(transports.Unreachable, "%s did not answer", n.name))
	}
}

// match finds the oldest pending request of a kind that fits.
func (n *network) match(kind int, fit func(*request) bool) *request {
	var best *request
	for _, r := range n.requests {
		if r.kind == kind && fit(r) && (best == nil || r.id < best.id) {
			best = r
		}
	}
	return best
}

// moderate turns a MUC role or affiliation change into KICK and MODE.
func (s *Session) moderate(c cmdModerate) {
	a, err := s.t.parseAddress(c.room)
	if err != nil {
		s.deliver(transports.Done{ID: c.id, Err: err})
		return
	}
	n := s.networks[a.network]
	if n == nil || n.state != stateRegistered || n.channels[a.target] == nil || !n.channels[a.target].joined {
		s.deliver(transports.Done{ID: c.id, Err: transports.Errorf(transports.NotConnected, "you are not in %s", a.target)})
		return
	}
	ch := n.channels[a.target]
	target := casefold(c.m.Nick)
	reason := sanitizeLine(c.m.Reason)
	mem := ch.members[target]
	var lines [][]string
	r := &request{id: c.id, channel: ch.name, target: target}
	switch {
	case c.m.Affiliation == transports.AffiliationOutcast:
		r.kind, r.mode = reqMode, "+b"
		lines = append(lines, []string{girc.MODE, ch.name, "+b", c.m.Nick + "!*@*"})
		if mem != nil {
			lines = append(lines, kickLine(ch.name, c.m.Nick, reason))
		}
	case c.m.Role == transports.RoleNone:
		if mem == nil {
			s.deliver(transports.Done{ID: c.id, Err: transports.Errorf(transports.NotFound, "%s is not in %s", c.m.Nick, ch.name)})
			return
		}
		r.kind = reqKick
		lines = append(lines, kickLine(ch.name, c.m.Nick, reason))
	case c.m.Role == transports.RoleModerator:
		r.kind, r.mode = reqMode, "+o"
	case c.m.Role == transports.RoleParticipant && mem != nil && strings.ContainsRune(mem.prefixes, '@'):
		r.kind, r.mode = reqMode, "-o"
	case c.m.Role == transports.RoleParticipant:
		r.kind, r.mode = reqMode, "+v"
	case c.m.Role == transports.RoleVisitor:
		r.kind, r.mode = reqMode, "-v"
	case c.m.Affiliation == transports.AffiliationNone || c.m.Affiliation == transports.AffiliationMember:
		r.kind, r.mode = reqMode, "-b"
		lines = append(lines, []string{girc.MODE, ch.name, "-b", c.m.Nick + "!*@*"})
	default:
		s.deliver(transports.Done{ID: c.id, Err: transports.Errorf(transports.Unsupported, "IRC has no such change (role %q, affiliation %q)", c.m.Role, c.m.Affiliation)})
		return
	}
	if lines == nil {
		lines = append(lines, []string{girc.MODE, ch.name, r.mode, c.m.Nick})
	}
	n.request(r)
	for _, l := range lines {
		if err := n.send(l[0], l[1:]...); err != nil {
			n.finish(r, err)
			return
		}
	}
}

func kickLine(channel, nick, reason string) []string {
	if reason == "" {
		return []string{girc.KICK, channel, nick}
	}
	return []string{girc.KICK, channel, nick, reason}
}
