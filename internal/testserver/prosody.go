package testserver

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// Component is an external component the server accepts.
type Component struct {
	Domain string
	Secret string
}

// User is an account on the server.
type User struct {
	Name     string
	Password string
}

// ProsodyConfig describes a Prosody to start.
type ProsodyConfig = XMPPConfig

// Prosody is a running Prosody server on loopback.
type Prosody struct {
	Domain        string
	C2SAddr       string
	ComponentAddr string
	RunDir        string

	cfgPath string
	dataDir string
	proc    *process
}

// StartProsody starts a private Prosody with the given virtual host,
// components and users; it stops when the test ends.
func StartProsody(t tb.TB, cfg ProsodyConfig) *Prosody {
	t.Helper()
	Require(t, "prosody", "prosody")
	if cfg.Domain == "" {
		cfg.Domain = "example.test"
	}
	dir := runDir(t, "prosody")
	ports := freePorts(t, 2)
	p := &Prosody{
		Domain:        cfg.Domain,
		C2SAddr:       fmt.Sprintf("127.0.0.1:%d", ports[0]),
		ComponentAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		RunDir:        dir,
		cfgPath:       filepath.Join(dir, "prosody.cfg.lua"),
		dataDir:       filepath.Join(dir, "data"),
	}
	// Stanza size limits stay at Prosody's defaults (512 KiB from a
	// component, 256 KiB from a client), as in production: raising them
	// once hid a gateway bug that took a transport down.
	extra := ""
	if cfg.Carbons {
		extra = `, "carbons"`
	}
	var b strings.Builder
	fmt.Fprintf(&b, `pidfile = %q
data_path = %q
log = { debug = %q }
run_as_root = true
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
component_interface = "127.0.0.1"
c2s_ports = { %d }
component_ports = { %d }
s2s_ports = { }
http_ports = { }
https_ports = { }
legacy_ssl_ports = { }
modules_enabled = { "roster", "saslauth", "disco", "ping", "presence", "offline", "posix"%s }
modules_disabled = { "s2s", "tls" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
`, filepath.Join(dir, "prosody.pid"), p.dataDir, filepath.Join(dir, "prosody.log"), ports[0], ports[1], extra)
	if cfg.NoNagle {
		b.WriteString("network_settings = { nagle = false }\n")
	}
	fmt.Fprintf(&b, "VirtualHost %q\n", cfg.Domain)
	for _, c := range cfg.Components {
		fmt.Fprintf(&b, "Component %q\n    component_secret = %q\n", c.Domain, c.Secret)
	}
	writeFile(t, p.cfgPath, b.String(), 0o644)
	for _, u := range cfg.Users {
		p.writeAccount(t, u.Name, u.Password)
	}
	p.start(t)
	t.Cleanup(p.Stop)
	return p
}

func (p *Prosody) start(t tb.TB) {
	t.Helper()
	p.proc = startProcess(t, "prosody", filepath.Join(p.RunDir, "prosody.out"),
		[]string{"prosody", "--config", p.cfgPath, "-F"})
	for _, addr := range []string{p.C2SAddr, p.ComponentAddr} {
		if err := p.proc.waitPort(addr, 15*time.Second); err != nil {
			p.proc.stop()
			t.Fatalf("%v\n%s", err, p.Log())
		}
	}
}

// writeAccount stores an internal_plain account file, which Prosody reads
// on every login, so it works before and after start.
func (p *Prosody) writeAccount(t tb.TB, name, password string) {
	t.Helper()
	path := filepath.Join(p.dataDir, encodePath(p.Domain), "accounts", encodePath(name)+".dat")
	writeFile(t, path, fmt.Sprintf("return {\n\t[\"password\"] = %q;\n};\n", password), 0o644)
}

// encodePath is Prosody's datamanager encoding of a path element: every
// byte but ASCII letters and digits as %xx.
func encodePath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// AddUser creates an account; it works while the server runs.
func (p *Prosody) AddUser(t tb.TB, name, password string) { p.writeAccount(t, name, password) }

// PID is the server process's id.
func (p *Prosody) PID() int { return p.proc.cmd.Process.Pid }

// Stop stops the server.
func (p *Prosody) Stop() {
	if p.proc != nil {
		p.proc.stop()
	}
}

// Kill kills the server with SIGKILL, as in a crash: no client or
// component is told anything. Restart starts it again.
func (p *Prosody) Kill() {
	if p.proc != nil {
		p.proc.kill()
	}
}

// Restart stops the server and starts it again with the same ports and data.
func (p *Prosody) Restart(t tb.TB) {
	t.Helper()
	p.Stop()
	p.start(t)
}

// Log returns the end of the server's log.
func (p *Prosody) Log() string {
	return tail(filepath.Join(p.RunDir, "prosody.log")) + "\n" + tail(filepath.Join(p.RunDir, "prosody.out"))
}

// Running reports whether the server process is alive.
func (p *Prosody) Running() error {
	select {
	case <-p.proc.exited:
		return errNotRunning
	default:
		return nil
	}
}
