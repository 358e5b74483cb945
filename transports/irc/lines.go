package irc

import (
	"strings"
	"unicode/utf8"
)

// maxBody bounds one message from XMPP, before it is split into lines.
const maxBody = 16 << 10

// maxLines bounds the IRC lines one message may become.
const maxLines = 40

// lineBudget is how many bytes of text fit in one PRIVMSG to target: the
// 512-byte line minus the command, the target, CR LF and the prefix the
// server adds when relaying (nick!user@host, up to about 100 bytes), and no
// more than girc's own limit for an event (maxEvent, from the server's
// NICKLEN and the like): a longer line girc cuts again itself, with a word
// splitter that made two IRC lines of each of ours and allocated some 70 KB
// per message.
//
// The budget never goes below minBudget, whatever the numbers: a server
// that announced NICKLEN=30 USERLEN=18 HOSTLEN=441 once left girc 17 bytes
// per event and the split no room at all.
func lineBudget(target string, maxEvent int) int {
	budget := 512 - len("PRIVMSG  :\r\n") - len(target) - 100
	// girc sends an event whole only while it is shorter than maxEvent.
	return max(minBudget, min(budget, maxEvent-len("PRIVMSG  :")-len(target)-1))
}

// minBudget is the least text per line, whatever the server announces.
const minBudget = 64

// sanitizeLine makes s safe as one IRC parameter: line breaks become
// spaces, NUL and the CTCP marker go.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n':
			return ' '
		case 0, '\x01':
			return -1
		}
		return r
	}, s)
}

// splitMessage turns a message body into IRC lines: one per line of text
// (blank lines dropped), each cut under budget bytes on a UTF-8 boundary,
// preferably at a space. It stops after maxLines+1 lines: the caller cuts
// what is beyond maxLines.
func splitMessage(body string, budget int) []string {
	var out []string
	budget = max(budget, 1)
	body = strings.ReplaceAll(body, "\r\n", "\n")
	for _, line := range strings.FieldsFunc(body, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = sanitizeLine(line)
		for len(line) > budget && len(out) <= maxLines {
			cut := cutPoint(line, budget)
			out = append(out, strings.TrimRight(line[:cut], " "))
			line = strings.TrimLeft(line[cut:], " ")
		}
		if len(out) > maxLines {
			return out
		}
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}

// cutPoint is where to cut s to keep at most budget bytes: the last space
// in the second half of the budget, else the last rune boundary.
func cutPoint(s string, budget int) int {
	if i := strings.LastIndexByte(s[:budget], ' '); i > budget/2 {
		return i + 1
	}
	cut := budget
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut == 0 {
		cut = budget // not UTF-8: cut anywhere
	}
	return cut
}

// validKey reports whether a channel key can be sent as one parameter.
func validKey(k string) bool {
	return !strings.ContainsAny(k, " ,\r\n\x00") && len(k) <= 100
}
