package registry

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"passerelle.dev/passerelle/transports"
)

// A Scope is what the gateway gives a transport as its State.
var _ transports.State = Scope{}

// TestTransportStateScope: a transport's state survives a reopen, stays
// apart from the gateway's own keys and from other registrations, and goes
// with its registration.
func TestTransportStateScope(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	db := openTest(t, path)
	for _, r := range []Registration{reg("a@x", "gw"), reg("b@x", "gw")} {
		if err := db.PutRegistration(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutState(ctx, "a@x", "gw", "rooms", []byte("gateway's")); err != nil {
		t.Fatal(err)
	}
	a := TransportState(db, "a@x", "gw")
	if err := a.Put(ctx, "rooms", []byte("transport's")); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "never-set"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if v, err := db.State(ctx, "a@x", "gw", "rooms"); err != nil || string(v) != "gateway's" {
		t.Errorf("the gateway's key = %q, %v: the transport's write reached it", v, err)
	}
	if v, err := TransportState(db, "b@x", "gw").Get(ctx, "rooms"); err != nil || v != nil {
		t.Errorf("another registration sees %q, %v", v, err)
	}
	db.Close()

	db = openTest(t, path)
	a = TransportState(db, "a@x", "gw")
	if v, err := a.Get(ctx, "rooms"); err != nil || !bytes.Equal(v, []byte("transport's")) {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	if err := a.Delete(ctx, "rooms"); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get(ctx, "rooms"); err != nil || v != nil {
		t.Errorf("after Delete: %q, %v", v, err)
	}
	if err := a.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRegistration(ctx, "a@x", "gw"); err != nil {
		t.Fatal(err)
	}
	if err := TransportState(db, "a@x", "gw").Put(ctx, "k", []byte("v")); err == nil {
		t.Error("Put for a deleted registration succeeded")
	}
}
