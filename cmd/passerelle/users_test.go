package main

import (
	"context"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"passerelle.dev/passerelle/registry"
)

// TestUsersListIsSafeToPrint: `users list` escapes terminal control
// characters in stored values (a setting holding an escape sequence would
// otherwise act on the admin's terminal), and shows a record that does
// not decode, among the others, so that the admin can remove it.
func TestUsersListIsSafeToPrint(t *testing.T) {
	path, cfg, db := openConfigDB(t)
	ctx := context.Background()
	hostile := "\x1b]0;owned\x07\x1b[2J\rfake\tcolumn\u202eevil"
	for _, u := range []string{"alice@example.test", "bob@example.test", "carol@example.test"} {
		err := db.PutRegistration(ctx, registry.Registration{User: u, Transport: "gw.example.test",
			Fields: map[string]string{"username": hostile}})
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	bdb, err := bolt.Open(cfg.Database.Path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("users")).Bucket([]byte("bob@example.test")).Bucket([]byte("gw.example.test")).Put([]byte("registration"), []byte("\x1b[31m{garbage"))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}

	out, err := runCmd(t, "-config", path, "users", "list")
	if err != nil {
		t.Fatalf("users list with a corrupt record: %v\n%s", err, out)
	}
	for i, r := range out {
		if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x202e {
			t.Fatalf("users list prints %U raw at byte %d:\n%q", r, i, out)
		}
	}
	if !strings.Contains(out, `username=\x1b]0;owned\x07\x1b[2J\x0dfake\x09column\u202eevil`) {
		t.Errorf("the setting is not shown escaped:\n%s", out)
	}
	// Keys (JIDs) are raw bytes, not always UTF-8.
	if got := printable("a\xffb\u00e9"); got != `a\xffb`+"\u00e9" {
		t.Errorf("printable of invalid UTF-8: %q", got)
	}
	if !strings.Contains(out, "alice@example.test") || !strings.Contains(out, "carol@example.test") ||
		!strings.Contains(out, "bob@example.test") || !strings.Contains(out, "CORRUPT RECORD") {
		t.Errorf("users list with a corrupt record:\n%s", out)
	}
	out, err = runCmd(t, "-config", path, "users", "remove", "bob@example.test")
	if err != nil || !strings.Contains(out, "removed bob@example.test") {
		t.Fatalf("removing the corrupt record: %v\n%s", err, out)
	}
	if out, _ = runCmd(t, "-config", path, "users", "list"); strings.Contains(out, "CORRUPT") || !strings.Contains(out, "2 registration(s)") {
		t.Errorf("after removing the corrupt record:\n%s", out)
	}
}
