package irc

import (
	"strings"
	"testing"
	"unicode/utf8"

	"passerelle.dev/passerelle/transports"
)

func testTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	off := false
	if cfg.Networks == nil {
		cfg.Networks = map[string]NetworkConfig{"irc.example": {TLS: &off}, "other.example": {TLS: &off}}
	}
	tr, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestParseAddress(t *testing.T) {
	tr := testTransport(t, Config{DefaultNetwork: "irc.example"})
	for _, c := range []struct{ in, want, err string }{
		{in: "#Go@irc.example", want: "#go"},
		{in: "#go@other.example", want: "#go@other.example"},
		{in: "Bob@OTHER.example", want: "bob@other.example"},
		{in: "#go", want: "#go"},
		{in: "bob", want: "bob"},
		{in: "irc.example", want: "irc.example"},
		{in: "other.example", want: "other.example"},
		{in: "&local@other.example", want: "&local@other.example"},
		{in: "[away]@irc.example", want: "{away}"},
		{in: "bad nick@irc.example", err: "nickname"},
		{in: "#a,b@irc.example", err: "channel"},
		{in: "#a b@irc.example", err: "channel"},
		{in: "#a\r\nQUIT@irc.example", err: "channel"},
		{in: "bob@unknown.example", err: "not available"},
		{in: "@irc.example", err: "empty"},
		{in: "1bob@irc.example", err: "nickname"},
		{in: "bob@irc example", err: "network"},
	} {
		got, err := tr.ParseAddress(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseAddress(%q) = %q, %v; want error with %q", c.in, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("ParseAddress(%q) = %q, %v; want %q", c.in, got, err, c.want)
		case err != nil && transports.KindOf(err) != transports.BadAddress:
			t.Errorf("ParseAddress(%q): error kind %v, want BadAddress", c.in, transports.KindOf(err))
		}
	}
	if !tr.IsRoom("#go") || !tr.IsRoom("&x@other.example") || tr.IsRoom("bob") || tr.IsRoom("irc.example") {
		t.Error("IsRoom misclassifies")
	}

	noDefault := testTransport(t, Config{})
	if _, err := noDefault.ParseAddress("#go"); err == nil {
		t.Error("a channel without a network is accepted without a default network")
	}
	anyNet := testTransport(t, Config{AnyNetwork: true})
	if got, err := anyNet.ParseAddress("#go@irc.libera.chat"); err != nil || got != "#go@irc.libera.chat" {
		t.Errorf("any_network: %q, %v", got, err)
	}
}

func TestSplitMessage(t *testing.T) {
	for _, c := range []struct {
		body   string
		budget int
		want   []string
	}{
		{"one", 100, []string{"one"}},
		{"a\r\nb\n\nc\rd", 100, []string{"a", "b", "c", "d"}},
		{"nul\x00 and \x01ctcp\x01", 100, []string{"nul and ctcp"}},
		{"aaaa bbbb cccc", 10, []string{"aaaa bbbb", "cccc"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"ééé", 3, []string{"é", "é", "é"}},
	} {
		got := splitMessage(c.body, c.budget)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("splitMessage(%q, %d) = %q, want %q", c.body, c.budget, got, c.want)
		}
	}
}

func FuzzSplitMessage(f *testing.F) {
	f.Add("hello\r\nQUIT :x", 20)
	f.Add(strings.Repeat("日本語 ", 100), 50)
	f.Fuzz(func(t *testing.T, body string, budget int) {
		if budget < 4 || budget > 600 {
			return
		}
		for _, l := range splitMessage(body, budget) {
			if len(l) > budget || strings.ContainsAny(l, "\r\n\x00\x01") || l == "" {
				t.Fatalf("bad line %q (budget %d)", l, budget)
			}
			if utf8.ValidString(body) && !utf8.ValidString(l) {
				t.Fatalf("line cut inside a character: %q", l)
			}
		}
	})
}

func TestRoles(t *testing.T) {
	for _, c := range []struct {
		prefixes  string
		moderated bool
		role      transports.Role
		aff       transports.Affiliation
	}{
		{"~", false, transports.RoleModerator, transports.AffiliationOwner},
		{"&@", false, transports.RoleModerator, transports.AffiliationAdmin},
		{"@+", false, transports.RoleModerator, transports.AffiliationAdmin},
		{"%", false, transports.RoleModerator, transports.AffiliationMember},
		{"+", true, transports.RoleParticipant, transports.AffiliationMember},
		{"", false, transports.RoleParticipant, transports.AffiliationNone},
		{"", true, transports.RoleVisitor, transports.AffiliationNone},
	} {
		role, aff := roleOf(c.prefixes, c.moderated)
		if role != c.role || aff != c.aff {
			t.Errorf("roleOf(%q, %v) = %s/%s, want %s/%s", c.prefixes, c.moderated, role, aff, c.role, c.aff)
		}
	}
	is := defaultISupport()
	is.parse([]string{"PREFIX=(qaohv)~&@%+", "CHANTYPES=#&+", "CHANMODES=beI,k,l,imnt", "MONITOR=100"})
	if p, n := is.splitPrefixes("@+bob!b@h"); p != "@+" || n != "bob" {
		t.Errorf("splitPrefixes = %q %q", p, n)
	}
	if got := is.addPrefix("+", '@'); got != "@+" {
		t.Errorf("addPrefix = %q", got)
	}
	if !is.monitor || !is.modeArg('l', true) || is.modeArg('l', false) || !is.modeArg('h', false) || is.modeArg('m', true) {
		t.Error("ISUPPORT parsing")
	}
}

// TestSplitTinyBudget: whatever budget a server's numbers lead to, the
// split ends, with a bounded number of lines; lineBudget never goes below
// minBudget (NICKLEN=30 USERLEN=18 HOSTLEN=441 left girc 17 bytes).
func TestSplitTinyBudget(t *testing.T) {
	body := strings.Repeat("word ", 600)
	for _, budget := range []int{-5, 0, 1, 3} {
		out := splitMessage(body, budget)
		if len(out) == 0 || len(out) > maxLines+1 {
			t.Errorf("budget %d: %d lines", budget, len(out))
		}
	}
	if b := lineBudget("bobbie", 17); b < minBudget {
		t.Errorf("lineBudget with 17 bytes per event = %d", b)
	}
}
