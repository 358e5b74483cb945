package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/registry"
)

// TestConcurrentWritesKeepTheStream has many goroutines write to a real
// XMPP server at once: the component stream must never break under them.
func TestConcurrentWritesKeepTheStream(t *testing.T) {
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     "example.test",
		Components: []testserver.Component{{Domain: "gw.example.test", Secret: "s"}},
	})
	g, logs := runGateway(t, p, "gw.example.test")

	const writers, each = 16, 150
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
				// Presence to an offline user: routed, then dropped.
				err := g.conn.send(sctx, presenceOut{From: "gw.example.test", To: fmt.Sprintf("nobody%d@example.test", w), ID: fmt.Sprint(i), Type: "unavailable"})
				scancel()
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if out := logs.String(); strings.Contains(out, "disconnected") || strings.Contains(out, "failed") {
		t.Errorf("the stream broke under concurrent writes:\n%s", out)
	}
}

// runGateway runs a gateway for domain (secret "s") on the test network
// against the real server p until the test ends, and returns it once it is
// connected, with its log.
func runGateway(t *testing.T, p *testserver.XMPP, domain string) (*Gateway, *testserver.SyncBuffer) {
	t.Helper()
	store, err := registry.Open(filepath.Join(t.TempDir(), "p.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := new(testserver.SyncBuffer)
	g, err := New(Config{Domain: domain, Secret: "s", Server: p.ComponentAddr,
		Transport: testnet.New(), Store: store, Logger: newTestLogger(logs)})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; store.Close() })
	for deadline := time.Now().Add(10 * time.Second); !g.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not connected")
		}
	}
	return g, logs
}
