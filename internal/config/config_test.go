package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var kinds = []string{"irc", "email"}

const valid = `
log_level = "debug"
log_format = "json"
[xmpp]
server = "127.0.0.1:5347"
reconnect_min = "2s"
reconnect_max = "1m"
ping_interval = "0s"
[database]
path = "/var/lib/p/p.db"
[access]
allow_domains = ["Example.org"]
admins = ["admin@example.org"]
[[transport]]
kind = "irc"
domain = "irc.example.org"
secret = "top-secret-value"
name = "IRC"
allow_domains = ["*"]
[transport.limits]
messages_per_minute = 30.5
max_rooms = 7
max_contacts = 50
[transport.options]
network = "irc.libera.chat"
port = 6697
[[transport]]
kind = "email"
domain = "mail.example.org"
secret = "another-secret"
`

func TestValid(t *testing.T) {
	c, err := Parse([]byte(valid), "p.toml", kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.XMPP.ReconnectMin != 2*time.Second || c.XMPP.PingInterval != 0 || c.Database.KeyFile != "/var/lib/p/p.db.key" || c.LogFormat != "json" {
		t.Errorf("parsed: %+v", c)
	}
	if !c.Allowed("irc.example.org", "anywhere.net") || !c.Allowed("mail.example.org", "example.org") || c.Allowed("mail.example.org", "other.org") {
		t.Error("allow-lists wrong")
	}
	if !c.IsAdmin("Admin@example.org") || c.IsAdmin("bob@example.org") {
		t.Error("admins wrong")
	}
	if l := c.Transports[0].Limits; l.MessagesPerMinute != 30.5 || l.MaxRooms != 7 || l.MaxContacts != 50 || l.Burst != 0 || c.Transports[1].Limits.MaxRooms != 0 {
		t.Errorf("limits: %+v", c.Transports)
	}
	if s := c.Summary(); !strings.Contains(s, "limits set: 30.5 messages a minute per user, 7 rooms per user") || !strings.Contains(s, "metrics and health: off") {
		t.Errorf("summary:\n%s", s)
	}
	var o struct {
		Network string `toml:"network"`
		Port    int    `toml:"port"`
	}
	if err := c.Transports[0].Options.Decode(&o); err != nil || o.Network != "irc.libera.chat" || o.Port != 6697 {
		t.Errorf("options: %+v %v", o, err)
	}
	var short struct {
		Network string `toml:"network"`
	}
	err = c.Transports[0].Options.Decode(&short)
	if err == nil || !strings.Contains(err.Error(), "transport[0].options.port: unknown key") {
		t.Errorf("unknown option: %v", err)
	}
	s := c.Summary()
	if strings.Contains(s, "top-secret-value") || !strings.Contains(s, "irc.example.org") || !strings.Contains(s, "network, port") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestProblemsNameTheirKeys(t *testing.T) {
	base := func(edit func(string) string) string { return edit(valid) }
	for _, tc := range []struct {
		name, input, want string
	}{
		{"syntax", "log_level = \n", "line 1"},
		{"level", base(func(s string) string { return strings.Replace(s, `"debug"`, `"verbose"`, 1) }), `log_level: "verbose" is not one of`},
		{"format", base(func(s string) string { return strings.Replace(s, `"json"`, `"xml"`, 1) }), "log_format"},
		{"unknown key", base(func(s string) string { return strings.Replace(s, "[xmpp]", "[xmpp]\nsevrer = 1", 1) }), "xmpp.sevrer: unknown key"},
		{"no server", base(func(s string) string { return strings.Replace(s, `server = "127.0.0.1:5347"`, "", 1) }), "xmpp.server: missing"},
		{"bad port", base(func(s string) string { return strings.Replace(s, "127.0.0.1:5347", "127.0.0.1:99999", 1) }), "xmpp.server"},
		{"no port", base(func(s string) string { return strings.Replace(s, "127.0.0.1:5347", "127.0.0.1", 1) }), "xmpp.server"},
		{"bad duration", base(func(s string) string { return strings.Replace(s, `"2s"`, `"soon"`, 1) }), "not a duration"},
		{"min > max", base(func(s string) string { return strings.Replace(s, `"2s"`, `"2h"`, 1) }), "xmpp.reconnect_min"},
		{"no db", base(func(s string) string { return strings.Replace(s, `path = "/var/lib/p/p.db"`, "", 1) }), "database.path: missing"},
		{"no allow", base(func(s string) string { return strings.Replace(s, `allow_domains = ["Example.org"]`, "", 1) }), "access.allow_domains: missing"},
		{"bad admin", base(func(s string) string { return strings.Replace(s, "admin@example.org", "example.org", 1) }), "access.admins[0]"},
		{"bad kind", base(func(s string) string { return strings.Replace(s, `kind = "email"`, `kind = "fax"`, 1) }), `transport[1].kind: "fax" is not a known transport (known: email, irc)`},
		{"dup domain", base(func(s string) string { return strings.Replace(s, "mail.example.org", "irc.example.org", 1) }), `transport[1].domain: "irc.example.org" is used by transport[0]`},
		{"bad domain", base(func(s string) string { return strings.Replace(s, "mail.example.org", "a@b", 1) }), "transport[1].domain"},
		{"no secret", base(func(s string) string { return strings.Replace(s, `secret = "another-secret"`, "", 1) }), "transport[1].secret: missing"},
		{"two secrets", base(func(s string) string {
			return strings.Replace(s, `secret = "another-secret"`, "secret = \"x\"\nsecret_file = \"/nonexistent\"", 1)
		}), "not both"},
		{"missing secret file", base(func(s string) string {
			return strings.Replace(s, `secret = "another-secret"`, `secret_file = "/nonexistent/secret"`, 1)
		}), "transport[1].secret_file"},
		{"negative limit", base(func(s string) string { return strings.Replace(s, "max_rooms = 7", "max_rooms = -1", 1) }), "transport[0].limits.max_rooms: must not be negative"},
		{"unknown limit", base(func(s string) string { return strings.Replace(s, "max_rooms = 7", "max_room = 7", 1) }), "transport.limits.max_room: unknown key"},
		{"stanza bound too small", base(func(s string) string { return strings.Replace(s, "[xmpp]", "[xmpp]\nmax_stanza_bytes = 1000", 1) }), "xmpp.max_stanza_bytes: 1000 is under the minimum of 4096"},
		{"stanza bound too large", base(func(s string) string { return strings.Replace(s, "[xmpp]", "[xmpp]\nmax_stanza_bytes = 100000000", 1) }), "xmpp.max_stanza_bytes: 100000000 is over"},
		{"bad metrics address", base(func(s string) string { return s + "[metrics]\nlisten = \"9470\"\n" }), "metrics.listen"},
		{"no transports", "[xmpp]\nserver = \"h:1\"\n[database]\npath = \"x\"\n[access]\nallow_domains = [\"*\"]\n", "no [[transport]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.input), "p.toml", kinds)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			for _, secret := range []string{"top-secret-value", "another-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestMaxStanzaBytes(t *testing.T) {
	c, err := Parse([]byte(valid), "p.toml", kinds)
	if err != nil || c.XMPP.MaxStanzaBytes != 64<<10 {
		t.Fatalf("default: %v, %v", c, err)
	}
	c, err = Parse([]byte(strings.Replace(valid, "[xmpp]", "[xmpp]\nmax_stanza_bytes = 200000", 1)), "p.toml", kinds)
	if err != nil || c.XMPP.MaxStanzaBytes != 200000 || !strings.Contains(c.Summary(), "stanzas written at most 200000 bytes") {
		t.Fatalf("set: %v, %v", c, err)
	}
}

func TestSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(path, []byte("from-file\n"), 0o600)
	c, err := Parse([]byte(strings.Replace(valid, `secret = "another-secret"`, `secret_file = "`+path+`"`, 1)), "p.toml", kinds)
	if err != nil {
		t.Fatal(err)
	}
	if c.Transports[1].Secret != "from-file" {
		t.Errorf("secret from file: %q", c.Transports[1].Secret)
	}
}

func TestContribExample(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("../../contrib/passerelle.toml")
	if err != nil {
		t.Fatal(err)
	}
	// Point the secret files somewhere that exists.
	for _, name := range []string{"irc.secret", "mail.secret"} {
		os.WriteFile(filepath.Join(dir, name), []byte("s\n"), 0o600)
	}
	text := strings.ReplaceAll(string(b), "/etc/passerelle/", dir+"/")
	if _, err := Parse([]byte(text), "contrib/passerelle.toml", kinds); err != nil {
		t.Fatalf("contrib/passerelle.toml does not load: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(valid)
	f.Add("log_level = \n")
	f.Add("[[transport]]\nkind = 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse([]byte(s), "fuzz.toml", kinds)
		if err == nil {
			_ = c.Summary()
			for _, tr := range c.Transports {
				var v map[string]any
				_ = tr.Options.Decode(&v)
			}
		}
	})
}

// TestRegistrationLimits: the per-user registration attempt limit is read
// from [transport.limits], shown in the summary and checked.
func TestRegistrationLimits(t *testing.T) {
	in := strings.Replace(valid, "max_rooms = 7", "max_rooms = 7\nregistration_attempts = 3\nregistration_window = \"1h\"", 1)
	c, err := Parse([]byte(in), "p.toml", kinds)
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Transports[0].Limits; l.RegistrationAttempts != 3 || l.RegistrationWindow != time.Hour {
		t.Errorf("limits: %+v", l)
	}
	if s := c.Summary(); !strings.Contains(s, "3 registration attempts per user, registration window 1h0m0s") {
		t.Errorf("summary:\n%s", s)
	}
	for bad, want := range map[string]string{
		"registration_attempts = -1":   "transport[0].limits.registration_attempts: must not be negative",
		`registration_window = "0s"`:   "transport[0].limits.registration_window: must be more than 0",
		`registration_window = "soon"`: "not a duration",
	} {
		_, err := Parse([]byte(strings.Replace(valid, "max_rooms = 7", "max_rooms = 7\n"+bad, 1)), "p.toml", kinds)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", bad, err, want)
		}
	}
}
