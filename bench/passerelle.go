package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/registry"
)

// passerelleGW runs the real passerelle binary with a generated config.
type passerelleGW struct {
	e       *env
	bin     string
	domain  string
	secret  string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	started time.Time
}

// Flood limits lifted on Passerelle's side: its per-connection pacing.
const passerelleLinesPerSecond, passerelleBurst = 1000000, 1000000

func newPasserelle(t tb.TB, e *env) *passerelleGW {
	t.Helper()
	dir, err := os.MkdirTemp("", "bench-passerelle-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "passerelle")
	args := []string{"build", "-o", bin}
	if e.prof.enabled() {
		args = append(args, "-tags", "pprof")
		e.gatewayEnv = append(e.gatewayEnv, "PASSERELLE_PPROF="+e.prof.addr)
	}
	build := exec.Command("go", append(args, "./cmd/passerelle")...)
	build.Dir = e.root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/passerelle: %v\n%s", err, out)
	}
	return &passerelleGW{e: e, bin: bin, domain: passerelleDomain, secret: passerelleSecret}
}

func (p *passerelleGW) Name() string               { return "passerelle" }
func (p *passerelleGW) Domain() string             { return p.domain }
func (p *passerelleGW) Room(channel string) string { return channel + "@" + p.domain }
func (p *passerelleGW) Started() time.Time         { return p.started }
func (p *passerelleGW) PID() int                   { return p.cmd.Process.Pid }
func (p *passerelleGW) Relaxed() string {
	return fmt.Sprintf("Passerelle: IRC lines_per_second = %d, burst = %d (defaults 2 and 10); per-user limits messages_per_minute = 1e9, burst = 1,000,000 (IRC defaults 120 and 20)", passerelleLinesPerSecond, passerelleBurst)
}

// Prepare registers the users in a registry file directly, with their
// local part as IRC nick, as a registration through XEP-0077 would.
func (p *passerelleGW) Prepare(t tb.TB, users []string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bench-registry-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "passerelle.db")
	db, err := registry.Open(path, registry.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, u := range users {
		nick, _, _ := strings.Cut(u, "@")
		if err := db.PutRegistration(ctx, registry.Registration{User: u, Transport: p.domain, Fields: map[string]string{"nick": nick}}); err != nil {
			t.Fatalf("registry: %v", err)
		}
	}
	return path
}

// Start copies the registry and its key into a fresh directory, writes
// the config and starts the binary.
func (p *passerelleGW) Start(t tb.TB, database string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "bench-passerelle-run-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "passerelle.db")
	for _, f := range [][2]string{{database, db}, {database + ".key", db + ".key"}} {
		if err := copyFile(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "passerelle.toml")
	toml := fmt.Sprintf(`log_level = "warn"
[xmpp]
server = %q
reconnect_min = "100ms"
reconnect_max = "1s"
ping_interval = "60s"
[database]
path = %q
[access]
allow_domains = [%q]
[[transport]]
kind = "irc"
domain = %q
secret = %q
[transport.limits]
messages_per_minute = 1e9
burst = 1000000
[transport.options]
default_network = "irc.test"
lines_per_second = %d
burst = %d
[transport.options.networks."irc.test"]
host = "127.0.0.1"
port = %d
tls = false
`, p.e.xmpp.ComponentAddr, db, xmppDomain, p.domain, p.secret, passerelleLinesPerSecond, passerelleBurst, p.e.irc.Port())
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "passerelle.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "-config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.e.gatewayEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start passerelle: %v", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(p.Stop)
}

// Stop sends SIGTERM (a graceful shutdown), then SIGKILL after 20 s.
func (p *passerelleGW) Stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// Log is the end of the current run's log.
func (p *passerelleGW) Log() string {
	raw, _ := os.ReadFile(filepath.Join(p.dir, "passerelle.log"))
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return nil
}
