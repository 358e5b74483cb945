package irc

import (
	"strings"

	"passerelle.dev/passerelle/transports"
)

// isupport is what a server announced about itself (RPL_ISUPPORT, 005).
type isupport struct {
	chanTypes   string
	prefixModes string // channel modes that give a prefix: "ov"
	prefixChars string // the prefixes, in the same order: "@+"
	listModes   string // type A channel modes: always a parameter
	paramModes  string // type B: always a parameter
	setModes    string // type C: a parameter when set
	monitor     bool
}

func defaultISupport() isupport {
	return isupport{chanTypes: "#&", prefixModes: "ov", prefixChars: "@+", listModes: "beI", paramModes: "k", setModes: "l"}
}

// parse reads the tokens of one 005 line. Values that would let a nick
// pass for a channel, or eat a nick's letters as prefixes, are ignored:
// channel types and prefixes must be among the usual symbols, modes
// letters.
func (is *isupport) parse(tokens []string) {
	for _, tok := range tokens {
		key, val, _ := strings.Cut(tok, "=")
		switch key {
		case "CHANTYPES":
			if val != "" && only(val, defaultChanTypes) {
				is.chanTypes = val
			}
		case "PREFIX":
			if modes, chars, ok := strings.Cut(strings.TrimPrefix(val, "("), ")"); ok && len(modes) == len(chars) &&
				len(modes) <= len(prefixSymbols) && only(chars, prefixSymbols) && letters(modes) {
				is.prefixModes, is.prefixChars = modes, chars
			}
		case "CHANMODES":
			parts := strings.Split(val, ",")
			if len(parts) >= 3 && letters(parts[0]+parts[1]+parts[2]) && len(parts[0]+parts[1]+parts[2]) <= 52 {
				is.listModes, is.paramModes, is.setModes = parts[0], parts[1], parts[2]
			}
		case "MONITOR":
			is.monitor = true
		}
	}
}

// prefixSymbols are the member prefixes servers use.
const prefixSymbols = "~&@%+!.*"

// only reports whether every byte of s is in set.
func only(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

func letters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// splitPrefixes separates the prefixes of a NAMES entry from the nick.
func (is *isupport) splitPrefixes(entry string) (prefixes, nick string) {
	i := 0
	for i < len(entry) && strings.IndexByte(is.prefixChars, entry[i]) >= 0 {
		i++
	}
	nick = entry[i:]
	if j := strings.IndexByte(nick, '!'); j >= 0 { // userhost-in-names
		nick = nick[:j]
	}
	return entry[:i], nick
}

// modeArg reports whether a channel mode letter takes a parameter.
func (is *isupport) modeArg(mode byte, adding bool) bool {
	switch {
	case strings.IndexByte(is.prefixModes, mode) >= 0,
		strings.IndexByte(is.listModes, mode) >= 0,
		strings.IndexByte(is.paramModes, mode) >= 0:
		return true
	case strings.IndexByte(is.setModes, mode) >= 0:
		return adding
	}
	return false
}

// prefixFor returns the prefix character a prefix mode gives.
func (is *isupport) prefixFor(mode byte) (byte, bool) {
	i := strings.IndexByte(is.prefixModes, mode)
	if i < 0 {
		return 0, false
	}
	return is.prefixChars[i], true
}

// roleOf maps a member's prefixes to a MUC role and affiliation.
func roleOf(prefixes string, moderated bool) (transports.Role, transports.Affiliation) {
	switch {
	case strings.ContainsRune(prefixes, '~'):
		return transports.RoleModerator, transports.AffiliationOwner
	case strings.ContainsRune(prefixes, '&'), strings.ContainsRune(prefixes, '@'):
		return transports.RoleModerator, transports.AffiliationAdmin
	case strings.ContainsRune(prefixes, '%'):
		return transports.RoleModerator, transports.AffiliationMember
	case strings.ContainsRune(prefixes, '+'):
		return transports.RoleParticipant, transports.AffiliationMember
	case moderated:
		return transports.RoleVisitor, transports.AffiliationNone
	}
	return transports.RoleParticipant, transports.AffiliationNone
}

// addPrefix and removePrefix keep a member's prefixes in the server's order.
func (is *isupport) addPrefix(have string, p byte) string {
	if strings.IndexByte(have, p) >= 0 {
		return have
	}
	var out []byte
	for i := 0; i < len(is.prefixChars); i++ {
		c := is.prefixChars[i]
		if c == p || strings.IndexByte(have, c) >= 0 {
			out = append(out, c)
		}
	}
	return string(out)
}

func removePrefix(have string, p byte) string {
	return strings.ReplaceAll(have, string(p), "")
}
