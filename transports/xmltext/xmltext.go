// Package xmltext measures and cuts text as encoding/xml writes it inside
// an element, so that a stanza's size is known before it is written: the
// gateway bounds every stanza with it, and a transport that must keep its
// own text under that bound (with its own note) measures the same way.
package xmltext

import "unicode/utf8"

// EscapedLen returns the length of s once escaped as XML character data by
// encoding/xml.
func EscapedLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		i += w
		n += escapedRuneLen(r, w)
	}
	return n
}

// Cut returns the longest prefix of s that ends on a character boundary,
// has at most maxBytes bytes and at most maxEscaped bytes once escaped,
// and whether anything was cut.
func Cut(s string, maxBytes, maxEscaped int) (string, bool) {
	esc := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if esc += escapedRuneLen(r, w); i+w > maxBytes || esc > maxEscaped {
			return s[:i], true
		}
		i += w
	}
	return s, false
}

// escapedRuneLen mirrors encoding/xml's EscapeString for one decoded rune
// of width w.
func escapedRuneLen(r rune, w int) int {
	switch r {
	case '"', '\'', '&', '\t', '\n', '\r':
		return 5 // &#34; &#39; &amp; &#x9; &#xA; &#xD;
	case '<', '>':
		return 4
	}
	if !inXMLCharRange(r) || (r == utf8.RuneError && w == 1) {
		return 3 // written as U+FFFD
	}
	return w
}

func inXMLCharRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
