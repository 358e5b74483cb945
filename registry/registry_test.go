package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTest(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func reg(user, transport string) Registration {
	return Registration{User: user, Transport: transport,
		Fields:  map[string]string{"username": "legacy-" + user},
		Secrets: map[string]string{"password": "pw-of-" + user}}
}

func TestRoundTripAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "p.db")
	db := openTest(t, path)
	if _, err := db.Registration(ctx, "a@x", "gw"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing registration: %v", err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db.now = func() time.Time { return t0 }
	if err := db.PutRegistration(ctx, reg("a@x", "gw")); err != nil {
		t.Fatal(err)
	}
	db.now = func() time.Time { return t0.Add(time.Hour) }
	r2 := reg("a@x", "gw")
	r2.Fields["nick"] = "al"
	if err := db.PutRegistration(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if err := db.PutContact(ctx, "a@x", "gw", Contact{Address: "bob@net", Name: "Bob", Subscribed: true}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutState(ctx, "a@x", "gw", "last_uid", []byte("42")); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openTest(t, path)
	got, err := db.Registration(ctx, "a@x", "gw")
	if err != nil {
		t.Fatal(err)
	}
	if got.Secrets["password"] != "pw-of-a@x" || got.Fields["nick"] != "al" || !got.Created.Equal(t0) || !got.Updated.Equal(t0.Add(time.Hour)) {
		t.Errorf("after reopen: %+v", got)
	}
	cs, err := db.Contacts(ctx, "a@x", "gw")
	if err != nil || len(cs) != 1 || cs[0] != (Contact{Address: "bob@net", Name: "Bob", Subscribed: true}) {
		t.Errorf("contacts: %v %v", cs, err)
	}
	if v, err := db.State(ctx, "a@x", "gw", "last_uid"); err != nil || string(v) != "42" {
		t.Errorf("state: %q %v", v, err)
	}
	if v, err := db.State(ctx, "a@x", "gw", "missing"); err != nil || v != nil {
		t.Errorf("missing state: %q %v", v, err)
	}
	if err := db.PutState(ctx, "nobody@x", "gw", "k", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("state of a missing registration: %v", err)
	}

	if err := db.DeleteRegistration(ctx, "a@x", "gw"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRegistration(ctx, "a@x", "gw"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := db.Contacts(ctx, "a@x", "gw"); !errors.Is(err, ErrNotFound) {
		t.Errorf("contacts survive their registration: %v", err)
	}
	db.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Bucket([]byte("a@x")) != nil {
			t.Error("the user bucket survives its last registration")
		}
		return nil
	})
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	db := openTest(t, path)
	secret := "correct horse battery staple"
	r := reg("a@x", "gw")
	r.Secrets["password"] = secret
	if err := db.PutRegistration(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the password is in the database file in plain text")
	}
	if !bytes.Contains(raw, []byte("legacy-a@x")) {
		t.Fatal("sanity: plain fields should be readable in the file")
	}
	st, err := os.Stat(path + ".key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode().Perm())
	}
}

func TestCiphertextBoundToRecord(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	db := openTest(t, path)
	db.PutRegistration(ctx, reg("a@x", "gw"))
	db.PutRegistration(ctx, reg("b@x", "gw"))
	// Move a's record, sealed secret included, over b's.
	err := db.db.Update(func(tx *bolt.Tx) error {
		a := regBucket(tx, "a@x", "gw").Get(keyReg)
		return regBucket(tx, "b@x", "gw").Put(keyReg, append([]byte{}, a...))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Registration(ctx, "b@x", "gw"); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Errorf("a secret moved to another user opened: %v", err)
	}
}

func TestKeyChecks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	db := openTest(t, path)
	db.PutRegistration(context.Background(), reg("a@x", "gw"))
	db.Close()

	os.Rename(path+".key", path+".key.orig")
	if _, err := createKey(path + ".key"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("a new key for an existing database: %v", err)
	}
	os.Rename(path+".key.orig", path+".key")
	os.Chmod(path+".key", 0o640)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key file: %v", err)
	}
	os.Chmod(path+".key", 0o600)
	os.WriteFile(filepath.Join(dir, "bad.key"), []byte("not hex\n"), 0o600)
	if _, err := Open(path, Options{KeyFile: filepath.Join(dir, "bad.key")}); err == nil {
		t.Error("a malformed key file was accepted")
	}
}

// TestLostKeyFileWritesNothing: with its key file gone, a database that
// holds sealed secrets is refused, and no new key file is written over
// the place where the admin will restore the old one. A database without
// secrets gets a new key.
func TestLostKeyFileWritesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	db := openTest(t, path)
	if err := db.PutRegistration(context.Background(), reg("a@x", "gw")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path + ".key")
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), "restore the key file") {
		t.Errorf("a database with secrets and no key file: %v", err)
	}
	if _, serr := os.Stat(path + ".key"); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("a key file was written before the refusal (stat: %v)", serr)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the database changed on a refused start")
	}

	// Without secrets there is nothing to lose: a new key is made.
	path2 := filepath.Join(dir, "q.db")
	db = openTest(t, path2)
	r := reg("b@x", "gw")
	r.Secrets = nil
	if err := db.PutRegistration(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Remove(path2 + ".key")
	db = openTest(t, path2)
	if err := db.PutRegistration(context.Background(), reg("b@x", "gw")); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Registration(context.Background(), "b@x", "gw"); err != nil || got.Secrets["password"] != "pw-of-b@x" {
		t.Errorf("after a new key: %+v, %v", got, err)
	}
}

func TestLockedFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	openTest(t, path)
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		db, err := Open(path, Options{Timeout: 100 * time.Millisecond, ReadOnly: true})
		if err == nil {
			db.Close()
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrLocked) {
			t.Errorf("second open: %v, want ErrLocked", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Open hangs on the lock")
	}
}

func TestPaging(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "p.db"))
	for i := range 25 {
		db.PutRegistration(ctx, reg(fmt.Sprintf("u%02d@x", i), "gw"))
		if i%5 == 0 {
			db.PutRegistration(ctx, reg(fmt.Sprintf("u%02d@x", i), "other"))
		}
	}
	var users []string
	after := ""
	for pages := 0; ; pages++ {
		page, err := db.Registrations(ctx, ListOptions{Transport: "gw", After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if r.Secrets != nil {
				t.Fatal("a listing carries secrets")
			}
			users = append(users, r.User)
			after = r.User
		}
		if len(page) < 10 {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(users) != 25 || users[0] != "u00@x" || users[24] != "u24@x" {
		t.Errorf("paged users: %v", users)
	}
	all, _ := db.Registrations(ctx, ListOptions{})
	one, _ := db.Registrations(ctx, ListOptions{User: "u05@x"})
	if len(all) != 30 || len(one) != 2 {
		t.Errorf("all: %d, one user: %d", len(all), len(one))
	}
}

func TestSchemaVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	// A version-0 file: bbolt, but no meta bucket yet.
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	db := openTest(t, path)
	db.db.View(func(tx *bolt.Tx) error {
		if v := schemaVersion(tx); v != SchemaVersion {
			t.Errorf("after migration: version %d", v)
		}
		return nil
	})
	db.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte{0, 0, 0, 0, 0, 0, 0, 99})
	})
	db.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("a newer schema was opened: %v", err)
	}
}

func BenchmarkRegistrationLookup(b *testing.B) {
	ctx := context.Background()
	db, err := Open(filepath.Join(b.TempDir(), "p.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for i := range 1000 {
		db.PutRegistration(ctx, reg(fmt.Sprintf("user%d@example.org", i), "gw"))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.Registration(ctx, "user500@example.org", "gw"); err != nil {
			b.Fatal(err)
		}
	}
}
