package main

import (
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// gateway is one XMPP-IRC gateway under test, run as its own process and
// connected as a component to the shared Prosody, bridging to the shared
// ngircd. Every scenario drives both through the same client code.
type gateway interface {
	// Name is "passerelle" or "biboumi".
	Name() string
	// Domain is the component domain.
	Domain() string
	// Room is the bare JID of the room of an IRC channel.
	Room(channel string) string
	// Relaxed says which of the gateway's flood limits are lifted.
	Relaxed() string
	// Prepare writes a database in which users (bare JIDs) are set up to
	// use the gateway, for Start to copy.
	Prepare(t tb.TB, users []string) string
	// Start runs the gateway on a fresh copy of the prepared database and
	// returns as soon as the process is started.
	Start(t tb.TB, database string)
	// Started is when the process was started.
	Started() time.Time
	// PID is the process id, for its memory.
	PID() int
	// Stop stops the process and waits for it.
	Stop()
}
