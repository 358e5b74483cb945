package main

import (
	"os"
	"path/filepath"
	"time"

	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/internal/testserver"
)

// biboumiGW runs biboumi through testserver.StartBiboumi.
type biboumiGW struct {
	e   *env
	cur *testserver.Biboumi
}

// Flood limits lifted on biboumi's side: its per-server throttle (by
// default 10 lines, then one a second), for every user.
const biboumiThrottle = -1

func (b *biboumiGW) Name() string               { return "biboumi" }
func (b *biboumiGW) Domain() string             { return biboumiDomain }
func (b *biboumiGW) Room(channel string) string { return channel + "@" + biboumiDomain }
func (b *biboumiGW) Started() time.Time         { return b.cur.Started }
func (b *biboumiGW) PID() int                   { return b.cur.PID() }
func (b *biboumiGW) Relaxed() string {
	return "biboumi: per-user IRC server option throttle_limit = -1 (default 10); history recording off (Passerelle keeps no archive)"
}

func (b *biboumiGW) config(users []string) testserver.BiboumiConfig {
	return testserver.BiboumiConfig{
		Domain:        biboumiDomain,
		Secret:        biboumiSecret,
		ComponentAddr: b.e.xmpp.ComponentAddr,
		IRCServer:     "127.0.0.1",
		IRCPort:       b.e.irc.Port(),
		Users:         users,
		ThrottleLimit: biboumiThrottle,
		Roster:        true,
		LogLevel:      2, // warnings, as Passerelle's "warn"
		NoWait:        true,
	}
}

// Prepare writes the users' options, and each user in biboumi's roster as
// after a subscription, to a database.
func (b *biboumiGW) Prepare(t tb.TB, users []string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bench-biboumi-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "biboumi.sqlite")
	testserver.BiboumiDatabase(t, path, b.config(users))
	return path
}

// Start starts biboumi on a copy of the database.
func (b *biboumiGW) Start(t tb.TB, database string) {
	t.Helper()
	cfg := b.config(nil)
	cfg.Database = database
	b.cur = testserver.StartBiboumi(t, cfg)
}

// Stop stops biboumi.
func (b *biboumiGW) Stop() {
	if b.cur != nil {
		b.cur.Stop()
	}
}
