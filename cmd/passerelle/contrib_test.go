package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestContribEjabberdSnippet runs ejabberd with the listener of the shipped
// contrib/ejabberd.yml (only its port and passwords replaced) and the real
// command with a transport on each of its domains: both connect and answer
// a user's disco#info, and neither connection is dropped.
func TestContribEjabberdSnippet(t *testing.T) {
	b, err := os.ReadFile("../../contrib/ejabberd.yml")
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"irc.example.org": "irc-component-secret", "mail.example.org": "mail-component-secret"}
	listener := snippetListener(t, string(b))
	for _, domain := range []string{"irc", "mail"} {
		placeholder := `"replace with the content of /etc/passerelle/` + domain + `.secret"`
		if !strings.Contains(listener, placeholder) {
			t.Fatalf("the snippet has no password placeholder %s:\n%s", placeholder, listener)
		}
		listener = strings.Replace(listener, placeholder, `"`+secrets[domain+".example.org"]+`"`, 1)
	}
	if strings.Count(listener, "port: 5347\n") != 1 || !strings.Contains(listener, `ip: "127.0.0.1"`) {
		t.Fatalf("the snippet does not listen on 127.0.0.1:5347:\n%s", listener)
	}
	srv := testserver.StartEjabberd(t, testserver.EjabberdConfig{
		XMPPConfig: testserver.XMPPConfig{Domain: "example.test", Users: []testserver.User{{Name: "alice", Password: "alice-pw"}}},
		ComponentListener: func(port int) string {
			return strings.Replace(listener, "port: 5347\n", fmt.Sprintf("port: %d\n", port), 1)
		},
	})

	dir := t.TempDir()
	cfg := `log_level = "debug"
[xmpp]
server = "` + srv.ComponentAddr + `"
reconnect_min = "50ms"
reconnect_max = "500ms"
[database]
path = "` + filepath.Join(dir, "db", "passerelle.db") + `"
[access]
allow_domains = ["example.test"]
`
	for _, domain := range []string{"irc.example.org", "mail.example.org"} {
		cfg += fmt.Sprintf("[[transport]]\nkind = \"testnet\"\ndomain = %q\nsecret = %q\n", domain, secrets[domain])
	}
	path := filepath.Join(dir, "passerelle.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs testserver.SyncBuffer
	go func() { done <- run(ctx, []string{"-config", path}, &bytes.Buffer{}, &logs) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("passerelle log:\n%s\nejabberd log:\n%s", logs.String(), srv.Log())
		}
	}()

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	c := xmpptest.Dial(t, cctx, srv.C2SAddr, jid.MustParse("alice@example.test"), "alice-pw")
	for _, domain := range []string{"irc.example.org", "mail.example.org"} {
		var info *xmpptest.Stanza
		for i := 0; i < 100; i++ {
			info = c.IQ(t, 10*time.Second, fmt.Sprintf(`<iq type='get' to='%s' id='d%d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, domain, i))
			if info.Type == "result" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(info.Inner, `category="gateway"`) {
			t.Errorf("disco#info of %s through the snippet's listener: %s", domain, info)
		}
	}
	if out := logs.String(); strings.Contains(out, "disconnected from the XMPP server") || strings.Contains(out, "cannot connect") {
		t.Errorf("a component connection failed:\n%s", out)
	}
}

// snippetListener returns the items of the snippet's listen section, comments
// left out, as StartEjabberd adds them to its own listen section.
func snippetListener(t *testing.T, snippet string) string {
	t.Helper()
	var b strings.Builder
	in := false
	for _, line := range strings.Split(snippet, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case line == "listen:":
			in = true
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case in && strings.HasPrefix(line, "  "):
			b.WriteString(line + "\n")
		case in:
			in = false
		}
	}
	if b.Len() == 0 {
		t.Fatal("contrib/ejabberd.yml has no listen section")
	}
	return b.String()
}
