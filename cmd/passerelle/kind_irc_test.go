package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"passerelle.dev/passerelle/internal/config"
)

// TestContribTransports builds every transport of the shipped example
// config that this binary knows, so that its options stay valid.
func TestContribTransports(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("../../contrib/passerelle.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"irc.secret", "mail.secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("s\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.ReplaceAll(string(b), "/etc/passerelle/", dir+"/")
	cfg, err := config.Parse([]byte(text), "contrib/passerelle.toml", []string{"irc", "email"})
	if err != nil {
		t.Fatal(err)
	}
	built := 0
	for _, tc := range cfg.Transports {
		newT, ok := kinds[tc.Kind]
		if !ok {
			continue
		}
		if _, err := newT(tc.Options, nil); err != nil {
			t.Errorf("transport %s (%s): %v", tc.Domain, tc.Kind, err)
		}
		built++
	}
	if built == 0 {
		t.Fatal("no transport of the example was built")
	}
}
