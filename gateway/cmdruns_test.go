package gateway

import (
	"path/filepath"
	"runtime"
	"testing"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/registry"
)

// TestCommandRunsHoldNoTimerEach: a user who executes commands over and
// over keeps at most maxCmdRuns runs and one expiry timer, not one
// ten-minute timer (and its closure) per execute.
func TestCommandRunsHoldNoTimerEach(t *testing.T) {
	store, err := registry.Open(filepath.Join(t.TempDir(), "p.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	g, err := New(Config{Domain: "gw.example.test", Transport: testnet.New(), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	u := newUser(g, jid.MustParse("alice@example.test"))
	defer u.stopRunSweep()
	c := &command{node: "n", first: func(*user) *stage { return &stage{} }}

	const executes = 20000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range executes {
		u.startRun(c, "alice@example.test/r")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(u.commands.runs) > maxCmdRuns {
		t.Errorf("%d runs kept, at most %d allowed", len(u.commands.runs), maxCmdRuns)
	}
	// What stays reachable after the executes: 10 runs and one timer
	// are a few KiB; a timer per execute is megabytes.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 512<<10 {
		t.Errorf("%d executes left %d KiB on the heap: something is kept per execute", executes, grown>>10)
	}
	if u.commands.sweep == nil {
		t.Error("no expiry sweep scheduled while runs are open")
	}
}
