package xmltext

import (
	"bytes"
	"encoding/xml"
	"testing"
	"unicode/utf8"
)

var samples = []string{"", "plain", "<&>\"'\t\n\r", "é€😀", "\x00\x01\x7f", "\xff\xfe", "\uFFFD", "\uFFFE\U0010FFFF", "a\xe2\x82"}

func escaped(t *testing.T, s string) int {
	t.Helper()
	var buf bytes.Buffer
	if err := xml.NewEncoder(&buf).Encode(struct {
		XMLName xml.Name `xml:"b"`
		S       string   `xml:",chardata"`
	}{S: s}); err != nil {
		t.Fatal(err)
	}
	return buf.Len() - len("<b></b>")
}

func TestEscapedLenMatchesEncodingXML(t *testing.T) {
	for _, s := range samples {
		if got, want := EscapedLen(s), escaped(t, s); got != want {
			t.Errorf("EscapedLen(%q) = %d, encoding/xml wrote %d", s, got, want)
		}
	}
}

// TestCut: the prefix is within both bounds, ends on a character boundary,
// and is the longest such.
func TestCut(t *testing.T) {
	for _, s := range samples {
		for maxBytes := 0; maxBytes <= len(s)+1; maxBytes++ {
			for maxEsc := 0; maxEsc <= 3*len(s)+6; maxEsc += 2 {
				got, cut := Cut(s, maxBytes, maxEsc)
				if len(got) > maxBytes || escaped(t, got) > maxEsc || (utf8.ValidString(s) && !utf8.ValidString(got)) {
					t.Fatalf("Cut(%q, %d, %d) = %q: over a bound or split", s, maxBytes, maxEsc, got)
				}
				if cut != (got != s) {
					t.Fatalf("Cut(%q, %d, %d) reports cut %v for %q", s, maxBytes, maxEsc, cut, got)
				}
				if got != s {
					_, w := utf8.DecodeRuneInString(s[len(got):])
					if next := s[:len(got)+w]; len(next) <= maxBytes && escaped(t, next) <= maxEsc {
						t.Fatalf("Cut(%q, %d, %d) = %q, but %q fits", s, maxBytes, maxEsc, got, next)
					}
				}
			}
		}
	}
}
