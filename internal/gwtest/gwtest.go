// Package gwtest runs a gateway for tests: a registry in a bbolt file and
// gateway.Run in a goroutine with fast timers, stopped at the test's end.
package gwtest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// Options say what to run.
type Options struct {
	Domain    string
	Secret    string
	Server    string // the XMPP server's component address
	Transport transports.Transport
	DBPath    string
	Logger    *slog.Logger // nil: slog.Default()
	Allowed   func(domain string) bool
	IsAdmin   func(bareJID string) bool
	Limits    transports.Limits
	Metrics   *gateway.Metrics // nil: private metrics
	// LegacyTimeout bounds each call into a legacy session; 2s if zero.
	LegacyTimeout time.Duration
	// QueueBytes is gateway.Config.QueueBytes.
	QueueBytes int
	// MaxStanzaBytes bounds the gateway's stanzas (0: its default).
	MaxStanzaBytes int
}

// Gateway is a running gateway and its registry.
type Gateway struct {
	*gateway.Gateway
	Store *registry.DB
	stop  func()
}

// connectWait bounds the wait for the first connection to the server.
const connectWait = 10 * time.Second

// Start opens the registry, runs the gateway and waits until it is
// connected to the XMPP server. Stop, or the end of the test, stops both.
func Start(t testing.TB, o Options) *Gateway {
	t.Helper()
	if o.LegacyTimeout <= 0 {
		o.LegacyTimeout = 2 * time.Second
	}
	store, err := registry.Open(o.DBPath, registry.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open registry: %v", err)
	}
	gw, err := gateway.New(gateway.Config{
		Domain:        o.Domain,
		Secret:        o.Secret,
		Server:        o.Server,
		Transport:     o.Transport,
		Store:         store,
		Allowed:       o.Allowed,
		IsAdmin:       o.IsAdmin,
		Limits:        o.Limits,
		Metrics:       o.Metrics,
		Logger:        o.Logger,
		ReconnectMin:  50 * time.Millisecond,
		ReconnectMax:  500 * time.Millisecond,
		PingInterval:  time.Second,
		LegacyTimeout: o.LegacyTimeout,
		QueueBytes:    o.QueueBytes,
		LoginRetry:    100 * time.Millisecond,

		MaxStanzaBytes: o.MaxStanzaBytes,
	})
	if err != nil {
		store.Close()
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	g := &Gateway{Gateway: gw, Store: store}
	stopped := false
	g.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("gateway did not stop within 30s")
		}
		if err := store.Close(); err != nil {
			t.Errorf("close registry: %v", err)
		}
	}
	t.Cleanup(g.stop)
	deadline := time.Now().Add(connectWait)
	for !gw.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not connect to the XMPP server within %v", connectWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return g
}

// Stop stops the gateway and closes the registry; calling it again does
// nothing.
func (g *Gateway) Stop() { g.stop() }

// Logger returns a debug-level text logger writing to w, for a test to
// show when it fails.
func Logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Tail returns the end of a long log, at most n bytes of it.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
