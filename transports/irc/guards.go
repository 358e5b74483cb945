package irc

import (
	"fmt"
	"strings"
	"time"

	"github.com/lrstanley/girc"
	"golang.org/x/time/rate"
)

// Bounds on what a server can make one connection do.
const (
	// ctcpBurst and ctcpEvery pace the answers to CTCP requests, which
	// anyone on the network can send: a few at once, then one every two
	// seconds; the other requests go unanswered.
	ctcpBurst = 3
	ctcpEvery = 2 * time.Second
	// maxForcedParts bounds the PARTs answering joins the user did not
	// ask for; beyond, such channels are ignored.
	maxForcedParts = 20
	// defaultMaxMembers is max_channel_members' default.
	defaultMaxMembers = 5000
	// maxCTCPText bounds the text echoed in a CTCP PING answer.
	maxCTCPText = 64
)

// guards is a connection's state for those bounds.
type guards struct {
	ctcp        *rate.Limiter
	forcedParts int
	told        map[string]bool // drop reasons the user was told about
}

func (n *network) resetGuards() {
	n.guards = guards{ctcp: rate.NewLimiter(rate.Every(ctcpEvery), ctcpBurst), told: map[string]bool{}}
}

// dropped tells the user, once per connection and reason, that lines from
// the server were ignored.
func (n *network) dropped(reason string) {
	if !n.firstTime(reason) {
		return
	}
	n.s.log.Warn("irc: ignoring lines from the server", "network", n.name, "reason", reason)
	what := "with " + reason
	if reason == dropLong {
		what = fmt.Sprintf("that was too long (over %d bytes)", maxLineBytes)
	}
	n.notice(fmt.Sprintf("Ignored a line from %s %s; more such lines on this connection will be ignored without notice.", n.name, what))
}

// firstTime reports whether key is new on this connection, and records it.
func (n *network) firstTime(key string) bool {
	if n.guards.told == nil {
		n.resetGuards()
	}
	if n.guards.told[key] {
		return false
	}
	n.guards.told[key] = true
	return true
}

// vet checks the names a line carries before anything uses them: nicks and
// channels become addresses, and one with "@", "%" or a control character
// could pass for a contact on another network.
func (n *network) vet(e *girc.Event) bool {
	if src := e.Source; src != nil && !n.fromServer(src) {
		if !validWireNick(src.Name) || !validUserHost(src.Ident) || !validUserHost(src.Host) {
			n.dropped(dropNick)
			return false
		}
	}
	p := e.Params
	switch e.Command {
	case girc.JOIN, girc.PART, girc.TOPIC, girc.KICK, girc.RPL_TOPIC, girc.RPL_TOPICWHOTIME, girc.RPL_NAMREPLY, girc.RPL_ENDOFNAMES, girc.RPL_CHANNELMODEIS:
		i := 0
		switch e.Command {
		case girc.RPL_TOPIC, girc.RPL_TOPICWHOTIME, girc.RPL_ENDOFNAMES, girc.RPL_CHANNELMODEIS:
			i = 1
		case girc.RPL_NAMREPLY:
			i = 2
		}
		if i < len(p) && !validWireChannel(p[i]) {
			n.dropped(dropChan)
			return false
		}
	case girc.PRIVMSG, girc.NOTICE, girc.MODE:
		if len(p) > 0 && isChannel(p[0], defaultChanTypes) && !validWireChannel(p[0]) {
			n.dropped(dropChan)
			return false
		}
	}
	switch e.Command {
	case girc.NICK, girc.RPL_WELCOME:
		if len(p) == 0 || !validWireNick(p[0]) {
			n.dropped(dropNick)
			return false
		}
	case girc.KICK:
		if len(p) < 2 || !validWireNick(p[1]) {
			n.dropped(dropNick)
			return false
		}
	}
	return true
}

// fromServer tells a server's source (a name with a dot, or anything
// before the welcome) from a user's.
func (n *network) fromServer(src *girc.Source) bool {
	return src.Ident == "" && src.Host == "" && (strings.Contains(src.Name, ".") || n.state != stateRegistered)
}

// validWireNick accepts the nicknames a server may report: those a user
// may choose (validNick) and also those starting with a digit or "-", as
// InspIRCd's UIDs after a collision.
func validWireNick(s string) bool {
	if s == "" || len(s) > maxNickLen {
		return false
	}
	if c := s[0]; '0' <= c && c <= '9' || c == '-' {
		s = "a" + s[1:]
	}
	return validNick(s)
}

// validUserHost rejects the user or host part of a source that would
// confuse the parsing of a source or of an address.
func validUserHost(s string) bool {
	if len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '!' || c == '@' || c == ',' {
			return false
		}
	}
	return true
}

func validWireChannel(s string) bool {
	return isChannel(s, defaultChanTypes) && validChannel(s)
}

// answerCTCP answers a private CTCP request through the paced queue, at
// the CTCP pace; requests beyond it go unanswered.
func (n *network) answerCTCP(nick string, c *girc.CTCPEvent) {
	var reply string
	switch c.Command {
	case girc.CTCP_VERSION:
		reply = "VERSION Passerelle"
	case girc.CTCP_PING:
		text := sanitizeLine(c.Text)
		if len(text) > maxCTCPText {
			text = strings.ToValidUTF8(text[:maxCTCPText], "")
		}
		reply = strings.TrimSpace("PING " + text)
	case girc.CTCP_TIME:
		reply = "TIME " + time.Now().UTC().Format(time.RFC1123)
	case girc.CTCP_CLIENTINFO:
		reply = "CLIENTINFO ACTION CLIENTINFO PING TIME VERSION"
	default:
		return
	}
	if n.guards.ctcp == nil || !n.guards.ctcp.Allow() {
		return
	}
	_ = n.send(girc.NOTICE, nick, "\x01"+reply+"\x01")
}
