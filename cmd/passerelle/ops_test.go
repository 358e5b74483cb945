package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/registry"
)

// TestOperations runs the real command with metrics and a log file: the
// health endpoint follows the component connection, the metrics show it,
// SIGHUP reopens a rotated log file, and SIGUSR1 backs the database up
// while the backup command, which needs a stopped gateway, says so.
func TestOperations(t *testing.T) {
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     "example.test",
		Components: []testserver.Component{{Domain: "gw.example.test", Secret: "s3cret-component"}},
	})
	addr := freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "passerelle.log")
	path := writeConfig(t, p.ComponentAddr, "[transport.limits]\nmessages_per_minute = 30\n")
	b, _ := os.ReadFile(path)
	text := fmt.Sprintf("log_file = %q\n%s\n[metrics]\nlisten = %q\n", logPath, b, addr)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() { done <- run(ctx, []string{"-config", path}, io.Discard, &stderr) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(20 * time.Second):
			b, _ := os.ReadFile(logPath)
			t.Fatalf("run did not stop; logs:\n%s", b)
		}
	}
	defer stop()

	waitFor(t, "healthy", func() bool { code, _ := get(addr, "/healthz"); return code == http.StatusOK })
	_, body := get(addr, "/healthz")
	if !strings.Contains(body, "gw.example.test: connected") || !strings.Contains(body, "database: ok") {
		t.Errorf("/healthz: %s", body)
	}
	code, metrics := get(addr, "/metrics")
	for _, want := range []string{
		`passerelle_component_connected{transport="gw.example.test"} 1`,
		`passerelle_users_logged_in{transport="gw.example.test"} 0`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if code != http.StatusOK || !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}

	// logrotate moves the file away, then sends SIGHUP.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "a new log file", func() bool {
		b, err := os.ReadFile(logPath)
		return err == nil && bytes.Contains(b, []byte("log file reopened"))
	})
	if old, _ := os.ReadFile(logPath + ".1"); !bytes.Contains(old, []byte("serving metrics and health")) {
		t.Errorf("the rotated file lost the earlier logs:\n%s", old)
	}

	// Without its server, the gateway is unhealthy, and healthy again after.
	p.Stop()
	waitFor(t, "unhealthy", func() bool { code, _ := get(addr, "/healthz"); return code == http.StatusServiceUnavailable })
	if _, body := get(addr, "/healthz"); !strings.Contains(body, "gw.example.test: not connected") {
		t.Errorf("/healthz without a server: %s", body)
	}
	p.Restart(t)
	waitFor(t, "healthy again", func() bool { code, _ := get(addr, "/healthz"); return code == http.StatusOK })
	if _, m := get(addr, "/metrics"); !strings.Contains(m, `passerelle_reconnects_total{side="xmpp",transport="gw.example.test"} 1`) {
		t.Errorf("the reconnection is not counted:\n%s", grepLines(m, "passerelle_reconnects"))
	}

	// Backups: the command refuses a running gateway's database and names
	// the signal; the signal writes one that opens with the key.
	dest := filepath.Join(t.TempDir(), "copy.db")
	if _, err := runCmd(t, "-config", path, "backup", dest); err == nil || !strings.Contains(err.Error(), "SIGUSR1") {
		t.Errorf("backup of a running gateway's database: %v", err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	waitFor(t, "a backup", func() bool {
		b, _ := os.ReadFile(logPath)
		return bytes.Contains(b, []byte("database backed up"))
	})
	checkBackup(t, backupPath(cfg), cfg.Database.KeyFile)
	stop()
	if out, err := runCmd(t, "-config", path, "backup", dest); err != nil || !strings.Contains(out, "backed up") {
		t.Fatalf("backup of a stopped gateway's database: %v\n%s", err, out)
	}
	checkBackup(t, dest, cfg.Database.KeyFile)

	if stderr.Len() != 0 {
		t.Errorf("logs went to stderr despite log_file:\n%s", stderr.String())
	}
}

// checkBackup opens a backup with the key, as a restore would.
func checkBackup(t *testing.T, path, keyFile string) {
	t.Helper()
	db, err := registry.Open(path, registry.Options{KeyFile: keyFile, ReadOnly: true})
	if err != nil {
		t.Fatalf("the backup %s does not open: %v", path, err)
	}
	if _, err := db.Registrations(context.Background(), registry.ListOptions{}); err != nil {
		t.Errorf("reading the backup: %v", err)
	}
	db.Close()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(addr, path string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 15s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
