package address

import (
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

var seeds = []struct{ legacy, local string }{
	{"alice@example.com", "alice%example.com"},
	{"bob@irc.libera.chat", "bob%irc.libera.chat"},
	{"#go@irc.libera.chat", "#go%irc.libera.chat"},
	{"&local@irc.example", "\\26local%irc.example"},
	{"irc.libera.chat", "irc.libera.chat"},
	{"Bob@Example.COM", "\\42ob%\\45xample.\\43\\4f\\4d"},
	{"100%@example.com", "100\\25%example.com"},
	{`back\slash`, `back\5cslash`},
	{`"quoted@local"@example.com`, `\22quoted%local\22%example.com`},
	{"with space", `with\20space`},
	{"[nick]^`{|}", "[nick]^`{|}"},
	{"café", `caf\c3\a9`},
	{"a/b:c<d>e'f", `a\2fb\3ac\3cd\3ee\27f`},
	{"@", "%"},
	{"nul\x00", `nul\00`},
}

func TestEncodeDecode(t *testing.T) {
	for _, s := range seeds {
		got, err := Encode(s.legacy)
		if err != nil || got != s.local {
			t.Errorf("Encode(%q) = %q, %v; want %q", s.legacy, got, err, s.local)
		}
		back, err := Decode(s.local)
		if err != nil || back != s.legacy {
			t.Errorf("Decode(%q) = %q, %v; want %q", s.local, back, err, s.legacy)
		}
		checkLocalpart(t, s.local)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, local := range []string{
		"",
		`\`,         // cut short
		`ab\4`,      // cut short
		`\zz`,       // not hex
		`\4F`,       // upper-case hex never produced
		`\61`,       // 'a' must not be escaped
		`\40`,       // '@' is written '%'
		"Alice",     // upper case never produced
		"a b",       // space must be escaped
		"caf\u00e9", // non-ASCII must be escaped
		strings.Repeat("a", MaxLocalpart+1),
	} {
		if got, err := Decode(local); err == nil {
			t.Errorf("Decode(%q) = %q, want an error", local, got)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	if _, err := Encode(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("Encode(\"\") error = %v, want ErrEmpty", err)
	}
	if _, err := Encode(strings.Repeat("é", 200)); !errors.Is(err, ErrTooLong) {
		t.Errorf("Encode(long) error = %v, want ErrTooLong", err)
	}
}

// checkLocalpart fails unless local is a valid JID localpart that a server's
// normalisation leaves unchanged.
func checkLocalpart(t *testing.T, local string) {
	t.Helper()
	j, err := jid.New(local, "gw.example.org", "")
	if err != nil {
		t.Fatalf("%q is not a valid localpart: %v", local, err)
	}
	if j.Localpart() != local {
		t.Fatalf("localpart %q is normalised to %q", local, j.Localpart())
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range seeds {
		f.Add(s.legacy)
		f.Add(s.local)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if local, err := Encode(s); err == nil {
			checkLocalpart(t, local)
			back, err := Decode(local)
			if err != nil || back != s {
				t.Fatalf("Decode(Encode(%q)) = %q, %v", s, back, err)
			}
		}
		if legacy, err := Decode(s); err == nil {
			again, err := Encode(legacy)
			if err != nil || again != s {
				t.Fatalf("Encode(Decode(%q)) = %q, %v: two localparts for one address", s, again, err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode("Some.User[away]@irc.libera.chat"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	local, _ := Encode("Some.User[away]@irc.libera.chat")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(local); err != nil {
			b.Fatal(err)
		}
	}
}
