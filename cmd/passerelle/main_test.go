package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

func init() {
	kinds["testnet"] = func(opts config.Options, _ *slog.Logger) (transports.Transport, error) {
		var o struct {
			Type string `toml:"type"`
		}
		if err := opts.Decode(&o); err != nil {
			return nil, err
		}
		n := testnet.New()
		n.Type = o.Type
		n.AddAccount("legacy", "pw")
		return n, nil
	}
}

// writeConfig writes a config for one testnet transport and returns its path.
func writeConfig(t *testing.T, server, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "passerelle.toml")
	cfg := `log_level = "debug"
[xmpp]
server = "` + server + `"
reconnect_min = "50ms"
reconnect_max = "500ms"
[database]
path = "` + filepath.Join(dir, "db", "passerelle.db") + `"
[access]
allow_domains = ["example.test"]
[[transport]]
kind = "testnet"
domain = "gw.example.test"
secret = "s3cret-component"
` + extra
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := run(ctx, args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestConfigErrorExitsBeforeConnecting(t *testing.T) {
	path := writeConfig(t, "127.0.0.1:1", "[transport.options]\nnetwrok = \"x\"\n")
	start := time.Now()
	_, err := runCmd(t, "-config", path)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "netwrok") {
		t.Fatalf("unknown option: got %v, want exit 2 naming the key", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("config error took %v", time.Since(start))
	}

	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("log_level = \"loud\"\n"), 0o600)
	_, err = runCmd(t, "-config", bad)
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "log_level") {
		t.Fatalf("bad log level: got %v", err)
	}
}

func TestUsersCommands(t *testing.T) {
	path, _, db := openConfigDB(t)
	ctx := context.Background()
	for _, u := range []string{"alice@example.test", "bob@example.test"} {
		err := db.PutRegistration(ctx, registry.Registration{User: u, Transport: "gw.example.test",
			Fields: map[string]string{"username": "legacy"}, Secrets: map[string]string{"password": "very-secret-pw"}})
		if err != nil {
			t.Fatal(err)
		}
	}

	// While the database is held (as by a running gateway) the commands fail
	// fast and say why.
	start := time.Now()
	_, err := runCmd(t, "-config", path, "users", "list")
	if err == nil || !strings.Contains(err.Error(), "in use by a running gateway") {
		t.Errorf("users list on a locked database: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("users list waited %v on the lock", d)
	}
	db.Close()

	out, err := runCmd(t, "-config", path, "users", "list")
	if err != nil {
		t.Fatalf("users list: %v", err)
	}
	if !strings.Contains(out, "alice@example.test") || !strings.Contains(out, "username=legacy") || !strings.Contains(out, "2 registration(s)") {
		t.Errorf("users list output:\n%s", out)
	}
	if strings.Contains(out, "very-secret-pw") {
		t.Errorf("users list shows a password:\n%s", out)
	}

	if _, err := runCmd(t, "-config", path, "users", "remove", "alice@example.test", "other.example.test"); err == nil {
		t.Error("removing a registration that does not exist succeeded")
	}
	out, err = runCmd(t, "-config", path, "users", "remove", "alice@example.test")
	if err != nil || !strings.Contains(out, "removed alice@example.test from gw.example.test") {
		t.Fatalf("users remove: %v\n%s", err, out)
	}
	out, _ = runCmd(t, "-config", path, "users", "list")
	if strings.Contains(out, "alice@example.test") || !strings.Contains(out, "1 registration(s)") {
		t.Errorf("after remove:\n%s", out)
	}
	if _, err := runCmd(t, "-config", path, "users", "remove", "not a jid"); err == nil {
		t.Error("users remove accepted a malformed JID")
	}
}

func TestCheckConfigHidesSecrets(t *testing.T) {
	path := writeConfig(t, "127.0.0.1:5347", "")
	out, err := runCmd(t, "-config", path, "check-config")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "gw.example.test") || strings.Contains(out, "s3cret-component") {
		t.Errorf("check-config output:\n%s", out)
	}
}

// TestServeAgainstXMPPServer runs the real command: it connects to the XMPP
// server, serves a real client, and shuts down cleanly when its context ends.
func TestServeAgainstXMPPServer(t *testing.T) {
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     "example.test",
		Components: []testserver.Component{{Domain: "gw.example.test", Secret: "s3cret-component"}},
		Users:      []testserver.User{{Name: "alice", Password: "alice-pw"}},
	})
	path := writeConfig(t, p.ComponentAddr, "[transport.options]\ntype = \"irc\"\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs testserver.SyncBuffer
	go func() { done <- run(ctx, []string{"-config", path}, &bytes.Buffer{}, &logs) }()

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	c := xmpptest.Dial(t, cctx, p.C2SAddr, jid.MustParse("alice@example.test"), "alice-pw")
	var info *xmpptest.Stanza
	for i := 0; i < 100; i++ {
		info = c.IQ(t, 10*time.Second, fmt.Sprintf(`<iq type='get' to='gw.example.test' id='d%d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, i))
		if info.Type == "result" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(info.Inner, `type="irc"`) {
		t.Fatalf("disco#info through the real command: %s", info)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop within 20s of its context ending")
	}
}

// TestHangupReloadsAccessLists: SIGHUP applies a new allow-list without a
// restart, and an invalid file changes nothing.
func TestHangupReloadsAccessLists(t *testing.T) {
	path := writeConfig(t, "127.0.0.1:5347", "")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var live atomic.Pointer[config.Config]
	live.Store(cfg)
	level := new(slog.LevelVar)
	var logs testserver.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go reloadOnHangup(ctx, path, &live, level, nil, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	allowed := allowFunc(&live, "gw.example.test")
	if !allowed("example.test") || allowed("other.test") {
		t.Fatal("initial allow-list wrong")
	}
	time.Sleep(100 * time.Millisecond) // let the handler subscribe

	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`["example.test"]`), []byte(`["other.test"]`), 1), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for !allowed("other.test") {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not apply the new allow-list")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if allowed("example.test") {
		t.Error("the old allow-list still applies")
	}

	os.WriteFile(path, []byte("log_level = \"loud\"\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if !allowed("other.test") {
		t.Error("an invalid config changed the allow-list")
	}
}

// openConfigDB writes a config for the admin commands and opens its
// database, as the gateway would.
func openConfigDB(t *testing.T) (string, *config.Config, *registry.DB) {
	t.Helper()
	path := writeConfig(t, "127.0.0.1:1", "")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(cfg.Database.Path), 0o700)
	db, err := registry.Open(cfg.Database.Path, registry.Options{KeyFile: cfg.Database.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg, db
}
