package registry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestCorruptRecordIsSkipped: one registration or contact that does not
// decode is logged and skipped, and every other one is still listed; an
// admin's listing (IncludeCorrupt) shows it, and it can be removed.
func TestCorruptRecordIsSkipped(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	db, err := Open(filepath.Join(t.TempDir(), "p.db"), Options{Timeout: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, u := range []string{"a@x", "b@x", "c@x"} {
		if err := db.PutRegistration(ctx, reg(u, "gw")); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range []string{"one@net", "two@net", "three@net"} {
		if err := db.PutContact(ctx, "a@x", "gw", Contact{Address: addr, Name: addr, Subscribed: true}); err != nil {
			t.Fatal(err)
		}
	}
	err = db.db.Update(func(tx *bolt.Tx) error {
		if err := regBucket(tx, "b@x", "gw").Put(keyReg, []byte("{not json")); err != nil {
			return err
		}
		return regBucket(tx, "a@x", "gw").Bucket(bucketContacts).Put([]byte("two@net"), []byte{0xff, 0})
	})
	if err != nil {
		t.Fatal(err)
	}

	regs, err := db.Registrations(ctx, ListOptions{Transport: "gw"})
	if err != nil || len(regs) != 2 || regs[0].User != "a@x" || regs[1].User != "c@x" {
		t.Errorf("listing with a corrupt record: %+v, %v; want a@x and c@x", regs, err)
	}
	cs, err := db.Contacts(ctx, "a@x", "gw")
	if err != nil || len(cs) != 2 {
		t.Errorf("contacts with a corrupt one: %+v, %v; want the two others", cs, err)
	}
	if out := logs.String(); !strings.Contains(out, "user=b@x") || !strings.Contains(out, "contact=two@net") {
		t.Errorf("the skipped records were not logged:\n%s", out)
	}

	all, err := db.Registrations(ctx, ListOptions{IncludeCorrupt: true})
	if err != nil || len(all) != 3 || all[1].User != "b@x" || all[1].Corrupt == "" || all[0].Corrupt != "" {
		t.Fatalf("admin listing: %+v, %v", all, err)
	}
	if err := db.DeleteRegistration(ctx, "b@x", "gw"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Registration(ctx, "b@x", "gw"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the corrupt record after removal: %v", err)
	}
}
