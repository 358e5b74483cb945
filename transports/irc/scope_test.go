package irc

import "testing"

// TestScope: an address's scope is its network, whether it names a nick, a
// channel or the network itself, on the default network or another.
func TestScope(t *testing.T) {
	tr := testTransport(t, Config{DefaultNetwork: "irc.example"})
	for in, want := range map[string]string{
		"bob":                  "irc.example",
		"#go":                  "irc.example",
		"irc.example":          "irc.example",
		"bob@other.example":    "other.example",
		"#go@other.example":    "other.example",
		"other.example":        "other.example",
		"bob@unknown.example":  "", // no network of this gateway
		"bad nick@irc.example": "",
	} {
		if got := tr.Scope(in); got != want {
			t.Errorf("Scope(%q) = %q, want %q", in, got, want)
		}
	}
}
