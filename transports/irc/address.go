package irc

import (
	"strings"

	"passerelle.dev/passerelle/transports"
)

// An address names a target on a network: "#chan@network" is a channel,
// "nick@network" a user, "network" the network itself. On the default
// network the "@network" part is left out: "#chan", "nick". Addresses are
// canonical in lower case (IRC compares names case-insensitively).
type address struct {
	network string // never empty once resolved
	target  string // channel or nick; empty for the network itself
}

// defaultChanTypes are the channel prefixes assumed before a server says
// otherwise.
const defaultChanTypes = "#&+!"

// Limits on names, beyond what servers announce.
const (
	maxNickLen    = 64
	maxChannelLen = 200
	maxNetworkLen = 253
)

// parseAddress splits and checks a legacy address.
func (t *Transport) parseAddress(raw string) (address, error) {
	target, network, hasNet := strings.Cut(raw, "@")
	if !hasNet {
		// One part: a network (it has a dot, or is configured) or a
		// target on the default network.
		if _, known := t.cfg.Networks[strings.ToLower(raw)]; known || strings.Contains(raw, ".") {
			network, target = raw, ""
		} else {
			network = t.cfg.DefaultNetwork
			if network == "" {
				return address{}, transports.Errorf(transports.BadAddress, "%q names no network (write nick@network or #channel@network)", raw)
			}
		}
	}
	network = strings.ToLower(network)
	if !validNetwork(network) {
		return address{}, transports.Errorf(transports.BadAddress, "%q is not a network name", network)
	}
	if !t.networkAllowed(network) {
		return address{}, transports.Errorf(transports.BadAddress, "the network %s is not available on this gateway", network)
	}
	a := address{network: network, target: casefold(target)}
	switch {
	case target == "" && hasNet:
		return address{}, transports.Errorf(transports.BadAddress, "%q has an empty name before @", raw)
	case target == "":
	case isChannel(target, defaultChanTypes):
		if !validChannel(target) {
			return address{}, transports.Errorf(transports.BadAddress, "%q is not a valid channel name", target)
		}
	case !validNick(target):
		return address{}, transports.Errorf(transports.BadAddress, "%q is not a valid IRC nickname", target)
	}
	return a, nil
}

// String returns the canonical address.
func (t *Transport) format(a address) string {
	switch {
	case a.target == "":
		return a.network
	case a.network == t.cfg.DefaultNetwork:
		return a.target
	default:
		return a.target + "@" + a.network
	}
}

func isChannel(name, chanTypes string) bool {
	return name != "" && strings.IndexByte(chanTypes, name[0]) >= 0
}

// validNick accepts the nicknames of RFC 2812 and the usual extensions: no
// space, no comma, no channel prefix or IRC syntax characters.
func validNick(n string) bool {
	if n == "" || len(n) > maxNickLen || strings.IndexByte("#&+!:$0123456789-", n[0]) >= 0 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("[]\\`_^{|}-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validChannel rejects what would break the IRC line or an address: space,
// comma and control characters (RFC 2812 §1.3 names BELL, CR, LF and NUL),
// colons that could start a trailing parameter, and "@" and "%", which
// separate an address's parts.
func validChannel(c string) bool {
	if len(c) < 2 || len(c) > maxChannelLen {
		return false
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; b <= ' ' || b == 0x7f || b == ',' || b == ':' || b == '@' || b == '%' {
			return false
		}
	}
	return true
}

func validNetwork(n string) bool {
	if n == "" || len(n) > maxNetworkLen || n[0] == '.' || n[0] == '-' {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// casefold lower-cases a name the way most IRC servers compare names
// (rfc1459 case mapping).
func casefold(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '[':
			b[i] = '{'
		case c == ']':
			b[i] = '}'
		case c == '\\':
			b[i] = '|'
		case c == '~':
			b[i] = '^'
		}
	}
	return string(b)
}
