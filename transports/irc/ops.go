package irc

import (
	"sort"
	"strings"
	"time"

	"github.com/lrstanley/girc"

	"passerelle.dev/passerelle/transports"
)

// channel is a channel the user is in or joining.
type channel struct {
	name      string // canonical (case-folded)
	key       string
	joining   bool
	joined    bool
	wasJoined bool // joined before the connection dropped: rejoin it
	leaving   bool
	members   map[string]*member // by case-folded nick
	names     map[string]*member // NAMES reply being collected
	topic     string
	topicBy   string
	moderated bool
	truncated bool // more members than max_channel_members: not all listed
}

// member is one nick in a channel, with its prefixes ("@", "+"...).
type member struct {
	nick     string
	prefixes string
}

func (n *network) sortedChannels() []*channel {
	out := make([]*channel, 0, len(n.channels))
	for _, ch := range n.channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// send carries one message from the user to IRC.
func (s *Session) send(m transports.Message) {
	a, err := s.t.parseAddress(m.To)
	if err != nil {
		s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: err})
		return
	}
	n := s.net(a.network)
	target := a.target
	room := isChannel(target, n.support.chanTypes)
	if room && m.Nick != "" {
		// A private message to an occupant: the answer comes back through
		// the room too.
		n.pmRooms[casefold(m.Nick)] = target
		target, room = m.Nick, false
		if !validNick(target) {
			s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: transports.Errorf(transports.BadAddress, "%q is not a valid IRC nickname", target)})
			return
		}
	}
	switch {
	case target == "":
		s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: transports.Errorf(transports.BadAddress, "write to a nick or channel on %s, not to the network", n.name)})
		return
	case room && n.channels[target] == nil:
		s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: transports.Errorf(transports.NotConnected, "you are not in %s", target)})
		return
	case n.refusal != nil:
		s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: n.refusal})
		return
	case n.state != stateRegistered:
		if room {
			s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: transports.Errorf(transports.NotConnected, "not connected to %s yet", n.name)})
			return
		}
		if len(n.queued) >= maxQueued {
			s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: transports.Errorf(transports.RateLimited, "too many messages waiting for %s", n.name)})
			return
		}
		n.queued = append(n.queued, m)
		n.connect()
		return
	}
	if room && m.Subject != "" && m.Body == "" {
		n.lastID[target] = m.ID
		n.reportSendError(m, n.send(girc.TOPIC, target, sanitizeLine(m.Subject)))
		return
	}
	n.lastID[target] = m.ID
	for _, line := range n.lines(target, m.Body) {
		if err := n.send(girc.PRIVMSG, target, line); err != nil {
			n.reportSendError(m, err)
			return
		}
	}
}

// lines renders a body as PRIVMSG texts: "/me" becomes a CTCP ACTION.
func (n *network) lines(target, body string) []string {
	maxEvent := girc.DefaultMaxLineLength - girc.DefaultMaxPrefixLength
	if n.client != nil {
		maxEvent = n.client.MaxEventLength()
	}
	budget := lineBudget(target, maxEvent)
	action := strings.HasPrefix(body, "/me ")
	if action {
		body = strings.TrimPrefix(body, "/me ")
		budget -= len("\x01ACTION \x01")
	}
	lines := splitMessage(body, budget)
	if len(lines) > maxLines {
		lines = append(lines[:maxLines-1], "[message cut: too long for IRC]")
	}
	if action {
		for i, l := range lines {
			lines[i] = "\x01ACTION " + l + "\x01"
		}
	}
	return lines
}

func (n *network) reportSendError(m transports.Message, err error) {
	if err != nil {
		n.s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: err})
	}
}

// setPresence carries the user's availability: away states become AWAY.
func (s *Session) setPresence(p transports.Presence) {
	s.presence = p
	for _, n := range s.networks {
		if n.state != stateRegistered {
			continue
		}
		if p.Available && (p.Show == transports.ShowNone || p.Show == transports.ShowChat) {
			_ = n.send("AWAY")
		} else {
			_ = n.send("AWAY", awayText(p))
		}
	}
	if p.Available {
		s.connectWatched()
	}
}

func (s *Session) join(c cmdJoin) {
	a, err := s.t.parseAddress(c.room)
	if err != nil {
		s.deliver(transports.RoomLeft{Room: c.room, Err: err})
		return
	}
	n := s.net(a.network)
	if n.refusal != nil {
		s.deliver(transports.RoomLeft{Room: c.room, Err: n.refusal})
		return
	}
	ch := n.channels[a.target]
	if ch == nil {
		ch = &channel{name: a.target, key: c.password, members: map[string]*member{}}
		n.channels[a.target] = ch
	}
	ch.leaving = false
	if n.state != stateRegistered {
		// The nick is the one in the settings: a room shows the user's
		// actual nick (status 210 when it differs from the one asked).
		n.connect()
		return // joined once registered
	}
	if ch.joined {
		n.s.deliver(n.roomJoined(ch))
		return
	}
	n.sendJoin(ch)
}

func (n *network) sendJoin(ch *channel) {
	if ch.joining || ch.joined {
		return
	}
	ch.joining = true
	ch.names = nil
	var err error
	if ch.key != "" {
		err = n.send(girc.JOIN, ch.name, ch.key)
	} else {
		err = n.send(girc.JOIN, ch.name)
	}
	if err != nil {
		ch.joining = false
		delete(n.channels, ch.name)
		n.s.deliver(transports.RoomLeft{Room: n.addr(ch.name), Err: err})
	}
}

func (s *Session) leave(c cmdLeave) {
	a, err := s.t.parseAddress(c.room)
	if err != nil {
		return
	}
	n := s.networks[a.network]
	if n == nil || n.channels[a.target] == nil {
		return
	}
	ch := n.channels[a.target]
	delete(n.channels, a.target)
	if n.state == stateRegistered && (ch.joined || ch.joining) {
		if reason := sanitizeLine(c.reason); reason != "" {
			_ = n.send(girc.PART, ch.name, reason)
		} else {
			_ = n.send(girc.PART, ch.name)
		}
	}
}

func (s *Session) changeNick(c cmdNick) {
	a, err := s.t.parseAddress(c.room)
	if err != nil {
		s.deliver(transports.Done{ID: c.id, Err: err})
		return
	}
	n := s.networks[a.network]
	if n == nil || n.state != stateRegistered {
		s.deliver(transports.Done{ID: c.id, Err: transports.Errorf(transports.NotConnected, "not connected to %s", a.network)})
		return
	}
	n.wantNick = c.nick
	n.request(&request{id: c.id, kind: reqNick, target: casefold(c.nick)})
	if err := n.send(girc.NICK, c.nick); err != nil {
		n.finish(n.requests[c.id], err)
	}
}

// watch starts or stops following a contact's presence.
func (s *Session) watch(c cmdWatch) {
	if c.on {
		s.watched[c.addr] = true
		s.connectWatched()
	} else {
		delete(s.watched, c.addr)
	}
	if a, err := s.t.parseAddress(c.addr); err == nil {
		if n := s.networks[a.network]; n != nil && n.state == stateRegistered {
			n.startPolling()
		}
	}
}

// connectWatched connects, while the user is available, to the networks of
// the contacts whose presence they follow.
func (s *Session) connectWatched() {
	if !s.presence.Available {
		return
	}
	for addr := range s.watched {
		a, err := s.t.parseAddress(addr)
		if err != nil || a.target == "" || isChannel(a.target, defaultChanTypes) {
			continue
		}
		s.net(a.network).connect()
	}
}

// watchedNicks lists the nicks on this network whose presence the user
// follows.
func (n *network) watchedNicks() []string {
	var nicks []string
	for addr := range n.s.watched {
		a, err := n.s.t.parseAddress(addr)
		if err == nil && a.network == n.name && a.target != "" && !isChannel(a.target, n.support.chanTypes) {
			nicks = append(nicks, a.target)
		}
	}
	sort.Strings(nicks)
	return nicks
}

// startPolling follows the watched nicks: with MONITOR where the server has
// it, else with ISON every PresenceInterval.
func (n *network) startPolling() {
	nicks := n.watchedNicks()
	if len(nicks) == 0 {
		return
	}
	if n.support.monitor {
		_ = n.send("MONITOR", "C")
		for len(nicks) > 0 {
			k := min(len(nicks), 20)
			_ = n.send("MONITOR", "+", strings.Join(nicks[:k], ","))
			nicks = nicks[k:]
		}
		return
	}
	n.poll()
}

func (n *network) poll() {
	n.stopPolling()
	nicks := n.watchedNicks()
	if len(nicks) == 0 || n.state != stateRegistered {
		return
	}
	for len(nicks) > 0 {
		k := min(len(nicks), 20)
		_ = n.send(girc.ISON, nicks[:k]...)
		nicks = nicks[k:]
	}
	n.poller = n.s.after(n.s.t.cfg.PresenceInterval.Duration, pollTimer{n.name, n.gen})
}

func (n *network) stopPolling() {
	if n.poller != nil {
		n.poller.Stop()
		n.poller = nil
	}
}

// dropChannels tells the user they are out of every channel of the network.
func (n *network) dropChannels(reason string) {
	for _, ch := range n.sortedChannels() {
		delete(n.channels, ch.name)
		n.s.deliver(transports.RoomLeft{Room: n.addr(ch.name), Err: transports.Errorf(transports.NotConnected, "%s", reason), Reason: reason})
	}
}

// requestTTL bounds the wait for the server to confirm a request.
const requestTTL = 15 * time.Second
