package email_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/gwtest"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/registry"
)

// received collects the mails of a batch that reach the XMPP client, by
// mail number (the body), and counts repeats.
type received struct {
	seen    map[string]int
	ids     map[string]string // body → stanza id of its first delivery
	repeats []string
	newIDs  []string // repeats under another id: clients could not drop them
}

func newReceived() *received {
	return &received{seen: map[string]int{}, ids: map[string]string{}}
}

// collect reads messages from c until n distinct mails arrived.
func (r *received) collect(t testing.TB, c *xmpptest.Client, from string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(r.seen) < n {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("only %d of %d mails arrived", len(r.seen), n)
		}
		m := c.Expect(t, left, chatFrom(from))
		r.add(m)
	}
}

func (r *received) add(m *xmpptest.Stanza) {
	body := m.Text("", "body")
	r.seen[body]++
	if r.seen[body] > 1 {
		r.repeats = append(r.repeats, body)
		if m.ID != r.ids[body] || !strings.Contains(m.Inner, m.ID) {
			r.newIDs = append(r.newIDs, fmt.Sprintf("%s (id %s, first id %s)", body, m.ID, r.ids[body]))
		}
	} else {
		r.ids[body] = m.ID
	}
}

func deliverBatch(t testing.TB, e *env, from, to string, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		e.mail.Deliver(t, to, rawMail(from, to, "batch", fmt.Sprintf("mail %03d", i)))
	}
}

// TestRestartsDeliverExactlyOnce: a gateway restart, a dropped IMAP
// connection and an IMAP server restart in the middle of a batch lose no
// mail and repeat none.
func TestRestartsDeliverExactlyOnce(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	r := newReceived()

	deliverBatch(t, e, carol, alice, 0, 40)
	r.collect(t, c, carol, 10, wait)
	e.stop() // graceful, mid-batch
	deliverBatch(t, e, carol, alice, 40, 20)
	e.start()
	r.collect(t, c, carol, 60, 2*wait)

	deliverBatch(t, e, carol, alice, 60, 20)
	e.mail.Kick(t, "alice")
	deliverBatch(t, e, carol, alice, 80, 20)
	r.collect(t, c, carol, 100, 2*wait)

	e.mail.RestartIMAP(t)
	deliverBatch(t, e, carol, alice, 100, 20)
	r.collect(t, c, carol, 120, 2*wait)

	c.ExpectNone(t, 1500*time.Millisecond, chatFrom(carol))
	for body, n := range r.seen {
		if n != 1 {
			t.Errorf("%s arrived %d times", body, n)
		}
	}
	for i := 0; i < 120; i++ {
		if r.seen[fmt.Sprintf("mail %03d", i)] == 0 {
			t.Errorf("mail %03d was lost", i)
		}
	}
}

// TestKill9DeliversEverything runs the real passerelle binary and kills it
// with SIGKILL in the middle of a batch of 200 mails, twice.
func TestKill9DeliversEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	e.stop() // the binary takes over the same database
	bin := buildBinary(t)
	cfgPath := writeBinaryConfig(t, e)
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	r := newReceived()

	p := startBinary(t, bin, cfgPath)
	deliverBatch(t, e, carol, alice, 0, 200)
	r.collect(t, c, carol, 40, 2*wait)
	p.kill(t)
	p = startBinary(t, bin, cfgPath)
	r.collect(t, c, carol, 120, 2*wait)
	p.kill(t)
	p = startBinary(t, bin, cfgPath)
	r.collect(t, c, carol, 200, 3*wait)
	c.ExpectNone(t, 1500*time.Millisecond, chatFrom(carol))
	p.stop(t)

	for i := 0; i < 200; i++ {
		if r.seen[fmt.Sprintf("mail %03d", i)] == 0 {
			t.Errorf("mail %03d was lost", i)
		}
	}
	// A kill between a stanza's write and the cursor's commit repeats that
	// one mail, under the same id and origin-id, so that clients drop it;
	// anything else is a bug.
	if len(r.repeats) > 2 {
		t.Errorf("%d repeats for 2 kills: %v", len(r.repeats), r.repeats)
	}
	if len(r.newIDs) > 0 {
		t.Errorf("repeats under a new id: %v", r.newIDs)
	}
	t.Logf("200 mails, 2 kills: %d repeated (same id)", len(r.repeats))
}

// TestUIDValidityChange: a renumbered mailbox is reported once, without a
// flood of old mail.
func TestUIDValidityChange(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	deliverBatch(t, e, carol, alice, 0, 3)
	newReceived().collect(t, c, carol, 3, wait)
	e.stop()

	// Pretend the INBOX was another generation.
	store, err := registry.Open(e.dbPath, registry.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw, err := store.State(ctx, "alice@"+serverDomain, gwDomain, "t.inbox")
	if err != nil || raw == nil {
		t.Fatalf("no INBOX position stored: %v", err)
	}
	var cur map[string]any // other fields (the mailbox) kept as they are
	_ = json.Unmarshal(raw, &cur)
	cur["uidvalidity"] = cur["uidvalidity"].(float64) + 1
	cur["last_uid"] = 0
	raw, _ = json.Marshal(cur)
	if err := store.PutState(ctx, "alice@"+serverDomain, gwDomain, "t.inbox", raw); err != nil {
		t.Fatal(err)
	}
	store.Close()

	e.start()
	note := c.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "message" && strings.Contains(s.Text("", "body"), "UIDVALIDITY")
	})
	if note.From != gwDomain {
		t.Errorf("note from %q", note.From)
	}
	c.ExpectNone(t, 1500*time.Millisecond, chatFrom(carol))
	deliverBatch(t, e, carol, alice, 3, 1)
	if m := c.Expect(t, wait, chatFrom(carol)); m.Text("", "body") != "mail 003" {
		t.Errorf("after the change: %s", m)
	}
}

// TestMailboxStatus: a mailbox whose password changed shows the transport
// as xa with the reason.
func TestMailboxStatus(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	e.stop()
	e.mail.AddUser(t, "alice", "changed")
	e.start()
	s := c.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "presence" && s.From == gwDomain && s.Text("", "show") == "xa"
	})
	if !strings.Contains(s.Text("", "status"), "refused the login") {
		t.Errorf("status: %s", s)
	}
}

// binary is the real passerelle process.
type binary struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "passerelle")
	out, err := exec.Command("go", "build", "-o", bin, "passerelle.dev/passerelle/cmd/passerelle").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeBinaryConfig(t *testing.T, e *env) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passerelle.toml")
	cfg := fmt.Sprintf(`log_level = "debug"
[xmpp]
server = %q
reconnect_min = "50ms"
reconnect_max = "500ms"
ping_interval = "1s"
[database]
path = %q
[access]
allow_domains = [%q]
[[transport]]
kind = "email"
domain = %q
secret = %q
[transport.options]
allow_plaintext = true
reconnect_min = "100ms"
reconnect_max = "1s"
[transport.options.domains.%q]
imap_host = "127.0.0.1"
imap_port = %d
imap_security = "plain"
smtp_host = "127.0.0.1"
smtp_port = %d
smtp_security = "plain"
`, e.xmpp.ComponentAddr, e.dbPath, serverDomain, gwDomain, gwSecret, e.mail.Domain(), port(e.mail.IMAPAddr()), port(e.mail.SMTPAddr()))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startBinary(t *testing.T, bin, cfg string) *binary {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg)
	logPath := filepath.Join(t.TempDir(), "passerelle.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &binary{cmd: cmd, done: make(chan struct{})}
	go func() { b.err = cmd.Wait(); f.Close(); close(b.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			// A goroutine dump, in the log, of a process still running.
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-b.done:
			case <-time.After(2 * time.Second):
			}
		}
		_ = cmd.Process.Kill()
		<-b.done
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("passerelle log:\n%s", gwtest.Tail(string(out), 40000))
		}
	})
	return b
}

func (b *binary) kill(t *testing.T) {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
}

func (b *binary) stop(t *testing.T) {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		t.Error("passerelle did not stop on SIGTERM")
	}
}
