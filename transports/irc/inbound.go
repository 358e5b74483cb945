package irc

import (
	"fmt"
	"strings"

	"github.com/lrstanley/girc"

	"passerelle.dev/passerelle/transports"
)

// handle translates one line from the server. It runs in the session's
// loop, in the order the server sent the lines.
func (n *network) handle(e girc.Event) {
	if !n.vet(&e) {
		return
	}
	p := e.Params
	arg := func(i int) string {
		if i < len(p) {
			return p[i]
		}
		return ""
	}
	switch e.Command {
	case girc.RPL_WELCOME:
		if n.state != stateRegistered { // once: a repeated welcome would redo it all
			n.registered(arg(0))
		}
	case girc.RPL_ISUPPORT:
		if len(p) > 2 {
			n.support.parse(p[1 : len(p)-1])
		}
	case girc.RPL_LOGGEDIN, girc.RPL_SASLSUCCESS:
		n.saslOK = true
	case girc.ERR_SASLFAIL, girc.ERR_SASLTOOLONG, girc.ERR_SASLABORTED, "902", "908":
		// girc drops the connection itself; ended reports it.
		n.saslFailed = true
	case girc.JOIN:
		n.onJoin(e.Source, arg(0))
	case girc.PART:
		n.onLeave(e.Source, arg(0), arg(1), false)
	case girc.KICK:
		n.onKick(e.Source, arg(0), arg(1), arg(2))
	case girc.QUIT:
		n.onQuit(e.Source, arg(0))
	case girc.NICK:
		n.onNick(e.Source, arg(0))
	case girc.MODE:
		n.onMode(e.Source, p)
	case girc.TOPIC:
		if ch := n.joinedChannel(arg(0)); ch != nil {
			ch.topic, ch.topicBy = arg(1), nickOf(e.Source)
			n.s.deliver(transports.RoomSubject{Room: n.addr(ch.name), Nick: ch.topicBy, Subject: ch.topic})
		}
	case girc.RPL_TOPIC:
		if ch := n.channels[casefold(arg(1))]; ch != nil {
			ch.topic = arg(2)
		}
	case girc.RPL_TOPICWHOTIME:
		if ch := n.channels[casefold(arg(1))]; ch != nil {
			ch.topicBy, _, _ = strings.Cut(arg(2), "!")
			if !validWireNick(ch.topicBy) {
				ch.topicBy = ""
			}
		}
	case girc.RPL_NAMREPLY:
		n.onNames(arg(2), arg(3))
	case girc.RPL_ENDOFNAMES:
		n.onEndOfNames(arg(1))
	case girc.RPL_CHANNELMODEIS:
		n.onChannelModes(arg(1), arg(2))
	case girc.PRIVMSG, girc.NOTICE:
		n.onMessage(e)
	case girc.RPL_ISON:
		n.onISON(strings.Fields(arg(1)))
	case girc.RPL_MONONLINE, girc.RPL_MONOFFLINE:
		watched := map[string]bool{}
		for _, nick := range n.watchedNicks() {
			watched[nick] = true
		}
		for _, t := range strings.Split(arg(1), ",") {
			nick, _, _ := strings.Cut(t, "!")
			if watched[casefold(nick)] {
				n.setOnline(nick, e.Command == girc.RPL_MONONLINE)
			}
		}
	case girc.ERR_NICKNAMEINUSE, girc.ERR_ERRONEUSNICKNAME, girc.ERR_NICKCOLLISION, girc.ERR_UNAVAILRESOURCE:
		n.onNickError(e.Command, arg(1), e.Last())
	case girc.ERR_CHANNELISFULL, girc.ERR_INVITEONLYCHAN, girc.ERR_BANNEDFROMCHAN, girc.ERR_BADCHANNELKEY,
		girc.ERR_NOSUCHCHANNEL, girc.ERR_TOOMANYCHANNELS, girc.ERR_BADCHANMASK, "477", "489":
		n.onJoinError(e.Command, arg(1), e.Last())
	case girc.ERR_CHANOPRIVSNEEDED:
		n.onChanopNeeded(arg(1), e.Last())
	case girc.ERR_NOSUCHNICK, girc.ERR_USERNOTINCHANNEL:
		n.onNoSuchNick(arg(1), arg(2), e.Last())
	case girc.ERR_CANNOTSENDTOCHAN:
		if ch := casefold(arg(1)); n.channels[ch] != nil {
			n.sendFailed(ch, transports.Errorf(transports.Forbidden, "%s: %s", arg(1), e.Last()))
		}
	case girc.ERROR:
		if n.firstTime("ERROR") { // once per connection: the log is no flood target
			n.s.log.Info("irc: server error", "network", n.name, "text", e.Last())
		}
	}
}

func nickOf(src *girc.Source) string {
	if src == nil {
		return ""
	}
	return src.Name
}

func (n *network) isMe(src *girc.Source) bool {
	return src != nil && casefold(src.Name) == casefold(n.nick)
}

func (n *network) joinedChannel(name string) *channel {
	if ch := n.channels[casefold(name)]; ch != nil && ch.joined {
		return ch
	}
	return nil
}

func (n *network) occupant(ch *channel, m *member) transports.Occupant {
	role, aff := roleOf(m.prefixes, ch.moderated)
	return transports.Occupant{Nick: m.nick, Role: role, Affiliation: aff, Address: n.addr(m.nick)}
}

func (n *network) onJoin(src *girc.Source, name string) {
	key := casefold(name)
	ch := n.channels[key]
	if n.isMe(src) {
		if ch == nil {
			// Not (or no longer) wanted, as after a forced join: part,
			// up to a bound, else ignore the channel.
			if n.guards.forcedParts < maxForcedParts {
				n.guards.forcedParts++
				_ = n.send(girc.PART, name)
			}
			return
		}
		ch.names = map[string]*member{}
		ch.truncated = false
		_ = n.send(girc.MODE, name)
		return
	}
	if ch == nil || !ch.joined || src == nil {
		return
	}
	if _, known := ch.members[casefold(src.Name)]; !known && len(ch.members) >= n.s.t.cfg.MaxChannelMembers {
		ch.truncated = true
		return
	}
	m := &member{nick: src.Name}
	ch.members[casefold(src.Name)] = m
	n.s.deliver(transports.OccupantChanged{Room: n.addr(key), Occupant: n.occupant(ch, m)})
}

func (n *network) onNames(name, list string) {
	ch := n.channels[casefold(name)]
	if ch == nil || ch.names == nil {
		return
	}
	for _, entry := range strings.Fields(list) {
		prefixes, nick := n.support.splitPrefixes(entry)
		if !validWireNick(nick) {
			n.dropped(dropNick)
			continue
		}
		if len(ch.names) >= n.s.t.cfg.MaxChannelMembers {
			ch.truncated = true
			return
		}
		ch.names[casefold(nick)] = &member{nick: nick, prefixes: prefixes}
	}
}

func (n *network) onEndOfNames(name string) {
	ch := n.channels[casefold(name)]
	if ch == nil || ch.names == nil {
		return
	}
	ch.members, ch.names = ch.names, nil
	if _, ok := ch.members[casefold(n.nick)]; !ok {
		ch.members[casefold(n.nick)] = &member{nick: n.nick}
	}
	ch.joining, ch.joined = false, true
	n.s.deliver(n.roomJoined(ch))
	if ch.truncated {
		n.roomNote(ch, fmt.Sprintf("%s has more members than this gateway lists (%d): the others are not shown.", ch.name, n.s.t.cfg.MaxChannelMembers))
	}
}

// roomJoined describes a joined channel for the gateway.
func (n *network) roomJoined(ch *channel) transports.RoomJoined {
	ev := transports.RoomJoined{Room: n.addr(ch.name), Nick: n.nick, Subject: ch.topic, SubjectBy: ch.topicBy}
	for _, m := range ch.members {
		ev.Occupants = append(ev.Occupants, n.occupant(ch, m))
	}
	return ev
}

func (n *network) onChannelModes(name, modes string) {
	ch := n.channels[casefold(name)]
	if ch == nil {
		return
	}
	moderated := strings.ContainsRune(modes, 'm')
	if moderated != ch.moderated {
		ch.moderated = moderated
		if ch.joined {
			n.refreshRoles(ch)
		}
	}
}

// refreshRoles re-announces the members whose role depends on +m.
func (n *network) refreshRoles(ch *channel) {
	for _, m := range ch.members {
		if m.prefixes == "" {
			n.s.deliver(transports.OccupantChanged{Room: n.addr(ch.name), Occupant: n.occupant(ch, m)})
		}
	}
}

func (n *network) onLeave(src *girc.Source, name, reason string, quit bool) {
	key := casefold(name)
	ch := n.channels[key]
	if src == nil {
		return
	}
	if n.isMe(src) {
		if ch != nil && !quit {
			// A PART we did not ask for (a server-side SAPART).
			delete(n.channels, key)
			n.s.deliver(transports.RoomLeft{Room: n.addr(key), Reason: "You left " + name + ": " + reason})
		}
		return
	}
	if ch == nil || !ch.joined {
		return
	}
	m := ch.members[casefold(src.Name)]
	if m == nil {
		return
	}
	delete(ch.members, casefold(src.Name))
	n.s.deliver(transports.OccupantChanged{Room: n.addr(key), Occupant: n.occupant(ch, m), Left: true, Reason: reason})
}

func (n *network) onQuit(src *girc.Source, reason string) {
	if src == nil {
		return
	}
	for _, ch := range n.sortedChannels() {
		n.onLeave(src, ch.name, reason, true)
	}
	if n.online[casefold(src.Name)] {
		n.setOnline(src.Name, false)
	}
}

func (n *network) onKick(src *girc.Source, name, target, reason string) {
	key := casefold(name)
	ch := n.joinedChannel(key)
	if r := n.match(reqKick, func(r *request) bool { return r.channel == key && r.target == casefold(target) }); r != nil && n.isMe(src) {
		n.finish(r, nil)
	}
	if ch == nil {
		return
	}
	m := ch.members[casefold(target)]
	if m == nil {
		m = &member{nick: target}
	}
	delete(ch.members, casefold(target))
	if casefold(target) == casefold(n.nick) {
		delete(n.channels, key)
	}
	n.s.deliver(transports.OccupantChanged{Room: n.addr(key), Occupant: n.occupant(ch, m), Left: true, Kicked: true, By: nickOf(src), Reason: reason})
}

func (n *network) onNick(src *girc.Source, nick string) {
	if src == nil || nick == "" {
		return
	}
	old := src.Name
	if n.isMe(src) {
		n.nick = nick
		if r := n.match(reqNick, func(r *request) bool { return r.target == casefold(nick) }); r != nil {
			n.finish(r, nil)
		}
	}
	for _, ch := range n.sortedChannels() {
		m := ch.members[casefold(old)]
		if !ch.joined || m == nil {
			continue
		}
		before := n.occupant(ch, m)
		delete(ch.members, casefold(old))
		m.nick = nick
		ch.members[casefold(nick)] = m
		n.s.deliver(transports.OccupantChanged{Room: n.addr(ch.name), Occupant: before, NewNick: nick})
	}
}

// onMode follows channel modes: prefixes change roles, +m makes the
// unvoiced visitors, and the echo of our own changes confirms requests.
func (n *network) onMode(src *girc.Source, p []string) {
	if len(p) < 2 {
		return
	}
	ch := n.joinedChannel(p[0])
	if ch == nil {
		return
	}
	modes, args := p[1], p[2:]
	adding := true
	for i := 0; i < len(modes); i++ {
		c := modes[i]
		switch c {
		case '+', '-':
			adding = c == '+'
			continue
		}
		var arg string
		if n.support.modeArg(c, adding) && len(args) > 0 {
			arg, args = args[0], args[1:]
		}
		sign := "-"
		if adding {
			sign = "+"
		}
		if n.isMe(src) || src == nil {
			key := ch.name
			target := casefold(arg)
			if c == 'b' {
				target, _, _ = strings.Cut(target, "!")
			}
			if r := n.match(reqMode, func(r *request) bool {
				return r.channel == key && r.mode == sign+string(c) && r.target == target
			}); r != nil {
				n.finish(r, nil)
			}
		}
		if c == 'm' {
			ch.moderated = adding
			n.refreshRoles(ch)
			continue
		}
		prefix, ok := n.support.prefixFor(c)
		m := ch.members[casefold(arg)]
		if !ok || m == nil {
			continue
		}
		if adding {
			m.prefixes = n.support.addPrefix(m.prefixes, prefix)
		} else {
			m.prefixes = removePrefix(m.prefixes, prefix)
		}
		n.s.deliver(transports.OccupantChanged{Room: n.addr(ch.name), Occupant: n.occupant(ch, m)})
	}
}

// onMessage delivers a PRIVMSG or NOTICE: to a channel, in its room; to
// the user, as a chat from the sender; from a server, from the network.
func (n *network) onMessage(e girc.Event) {
	if len(e.Params) < 2 || e.Source == nil {
		return
	}
	target, text := e.Params[0], e.Last()
	if ctcp := girc.DecodeCTCP(&e); ctcp != nil {
		if ctcp.Command != girc.CTCP_ACTION {
			if ctcp.Reply || e.Command != girc.PRIVMSG || isChannel(target, n.support.chanTypes) || n.fromServer(e.Source) {
				return
			}
			n.answerCTCP(e.Source.Name, ctcp)
			return
		}
		text = "/me " + ctcp.Text
	}
	if n.fromServer(e.Source) {
		if n.state == stateRegistered {
			n.notice(text)
		}
		return
	}
	if isChannel(target, n.support.chanTypes) {
		ch := n.joinedChannel(target)
		if ch == nil {
			return
		}
		n.s.deliver(transports.Message{From: n.addr(ch.name), Nick: e.Source.Name, Type: transports.Groupchat, Body: text})
		return
	}
	typ := transports.Chat
	if e.Command == girc.NOTICE {
		typ = transports.Normal
	}
	if name, ok := n.pmRooms[casefold(e.Source.Name)]; ok {
		if ch := n.joinedChannel(name); ch != nil && ch.members[casefold(e.Source.Name)] != nil {
			n.s.deliver(transports.Message{From: n.addr(ch.name), Nick: e.Source.Name, Type: typ, Body: text})
			return
		}
		delete(n.pmRooms, casefold(e.Source.Name))
	}
	n.s.deliver(transports.Message{From: n.addr(e.Source.Name), Type: typ, Body: text})
}

func (n *network) onISON(online []string) {
	on := map[string]bool{}
	for _, nick := range online {
		on[casefold(nick)] = true
	}
	for _, nick := range n.watchedNicks() {
		n.setOnline(nick, on[nick])
	}
}

// setOnline reports a watched contact's presence when it changes.
func (n *network) setOnline(nick string, online bool) {
	key := casefold(nick)
	if nick == "" || n.online[key] == online {
		return
	}
	if online {
		n.online[key] = true
	} else {
		delete(n.online, key)
	}
	n.s.deliver(transports.Presence{From: n.addr(key), Available: online})
}

func (n *network) onNickError(code, nick, text string) {
	if n.state != stateRegistered {
		return // girc tries the suffix; the registration timeout bounds it
	}
	kind := transports.Conflict
	if code == girc.ERR_ERRONEUSNICKNAME {
		kind = transports.BadRequest
	}
	r := n.match(reqNick, func(r *request) bool { return r.target == casefold(nick) })
	n.wantNick = n.nick
	n.finish(r, transports.Errorf(kind, "%s: %s", nick, text))
}

// joinErrors maps join failures to error kinds, and so to MUC errors.
var joinErrors = map[string]transports.ErrorKind{
	girc.ERR_CHANNELISFULL:   transports.Unavailable,
	girc.ERR_INVITEONLYCHAN:  transports.RegistrationRequired,
	girc.ERR_BANNEDFROMCHAN:  transports.Forbidden,
	girc.ERR_BADCHANNELKEY:   transports.NotAuthorized,
	girc.ERR_NOSUCHCHANNEL:   transports.NotFound,
	girc.ERR_TOOMANYCHANNELS: transports.Unavailable,
	girc.ERR_BADCHANMASK:     transports.BadAddress,
	"477":                    transports.RegistrationRequired, // needs a registered nick
	"489":                    transports.Forbidden,            // TLS only
}

func (n *network) onJoinError(code, name, text string) {
	key := casefold(name)
	ch := n.channels[key]
	if ch == nil || ch.joined {
		return
	}
	delete(n.channels, key)
	n.s.deliver(transports.RoomLeft{Room: n.addr(key), Err: transports.Errorf(joinErrors[code], "%s: %s", name, text), Reason: text})
}

func (n *network) onChanopNeeded(name, text string) {
	key := casefold(name)
	err := transports.Errorf(transports.Forbidden, "%s: %s", name, text)
	for _, kind := range []int{reqKick, reqMode} {
		if r := n.match(kind, func(r *request) bool { return r.channel == key }); r != nil {
			n.finish(r, err)
			return
		}
	}
	if n.channels[key] != nil {
		n.sendFailed(key, err) // a TOPIC
	}
}

func (n *network) onNoSuchNick(nick, name, text string) {
	target := casefold(nick)
	err := transports.Errorf(transports.NotFound, "%s: %s", nick, text)
	if r := n.match(reqKick, func(r *request) bool { return r.target == target }); r != nil {
		n.finish(r, err)
		return
	}
	if r := n.match(reqMode, func(r *request) bool { return r.target == target }); r != nil {
		n.finish(r, err)
		return
	}
	if name == "" || !isChannel(name, n.support.chanTypes) {
		n.sendFailed(target, err)
	}
}

// sendFailed reports the failure of the last message sent to target.
func (n *network) sendFailed(target string, err error) {
	id, ok := n.lastID[target]
	if !ok {
		return
	}
	delete(n.lastID, target)
	n.s.deliver(transports.SendFailure{To: n.addr(target), ID: id, Err: err})
}
