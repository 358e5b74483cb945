package testserver

import (
	"fmt"
	"os"

	"passerelle.dev/passerelle/internal/tb"
)

// XMPPServerEnv is the environment variable that chooses the XMPP server
// StartXMPP runs: "prosody" (the default) or "ejabberd".
const XMPPServerEnv = "PASSERELLE_XMPP_SERVER"

// The kinds of XMPP server.
const (
	KindProsody  = "prosody"
	KindEjabberd = "ejabberd"
)

// XMPPConfig describes an XMPP server to start.
type XMPPConfig struct {
	// Domain is the virtual host (default "example.test").
	Domain     string
	Components []Component
	Users      []User
	// NoNagle turns Nagle's algorithm off on Prosody's sockets
	// (network_settings.nagle = false); ejabberd ignores it. With it on, a
	// stanza Prosody writes in two pieces can wait for the peer's delayed
	// ACK, about 40 ms on Linux; a benchmark turns it off so that the
	// figures are the gateways' own.
	NoNagle bool
	// Carbons loads message carbons (XEP-0280), which production configs
	// of both servers have: Prosody's mod_carbons, ejabberd's
	// mod_carboncopy.
	Carbons bool
}

// XMPP is a running XMPP server of either kind, so that one test runs
// against both.
type XMPP struct {
	// Kind is KindProsody or KindEjabberd.
	Kind string
	// Domain is the virtual host the users are on.
	Domain string
	// C2SAddr is the client listener, 127.0.0.1:port, without TLS.
	C2SAddr string
	// ComponentAddr is the XEP-0114 component listener, 127.0.0.1:port.
	ComponentAddr string
	// RunDir holds the server's config, data and logs (KIND.log).
	RunDir string

	srv xmppServer
}

// xmppServer is what Prosody and Ejabberd have in common.
type xmppServer interface {
	AddUser(t tb.TB, name, password string)
	Stop()
	Kill()
	Restart(t tb.TB)
	Log() string
	Running() error
}

// XMPPKind is the server kind PASSERELLE_XMPP_SERVER asks for, or an error
// for an unknown one.
func XMPPKind() (string, error) {
	switch k := os.Getenv(XMPPServerEnv); k {
	case "", KindProsody:
		return KindProsody, nil
	case KindEjabberd:
		return KindEjabberd, nil
	default:
		return "", fmt.Errorf("%s=%q: want %q or %q", XMPPServerEnv, k, KindProsody, KindEjabberd)
	}
}

// StartXMPP starts the XMPP server that PASSERELLE_XMPP_SERVER names
// (Prosody by default) with the given virtual host, components and users;
// it stops when the test ends.
func StartXMPP(t tb.TB, cfg XMPPConfig) *XMPP {
	t.Helper()
	kind, err := XMPPKind()
	if err != nil {
		t.Fatal(err)
	}
	if kind == KindEjabberd {
		e := StartEjabberd(t, EjabberdConfig{XMPPConfig: cfg})
		return &XMPP{Kind: kind, Domain: e.Domain, C2SAddr: e.C2SAddr, ComponentAddr: e.ComponentAddr, RunDir: e.RunDir, srv: e}
	}
	p := StartProsody(t, cfg)
	return &XMPP{Kind: kind, Domain: p.Domain, C2SAddr: p.C2SAddr, ComponentAddr: p.ComponentAddr, RunDir: p.RunDir, srv: p}
}

// AddUser creates an account; it works while the server runs.
func (x *XMPP) AddUser(t tb.TB, name, password string) { x.srv.AddUser(t, name, password) }

// Stop stops the server.
func (x *XMPP) Stop() { x.srv.Stop() }

// Kill kills the server with SIGKILL, as in a crash: no client or
// component is told anything. Restart starts it again.
func (x *XMPP) Kill() { x.srv.Kill() }

// Restart stops the server and starts it again with the same ports and data.
func (x *XMPP) Restart(t tb.TB) {
	t.Helper()
	x.srv.Restart(t)
}

// Log returns the end of the server's log.
func (x *XMPP) Log() string { return x.srv.Log() }

// Running reports whether the server process is alive.
func (x *XMPP) Running() error { return x.srv.Running() }
