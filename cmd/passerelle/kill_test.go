package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/gwtest"
	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/registry"
)

const (
	killDomain = "gw.example.test"
	killSecret = "s3cret-component"
	killWait   = 10 * time.Second
	friendJID  = "friend%demo.example@" + killDomain
)

// buildDemo builds the real binary with the demo tag, which adds the
// in-memory test network as the transport kind "testnet".
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "passerelle")
	out, err := exec.Command("go", "build", "-tags", "demo", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -tags demo: %v\n%s", err, out)
	}
	return bin
}

// writeDemoConfig writes a config for the binary: one testnet transport
// whose legacy account "legacy"/"pw" has the contact friend@demo.example,
// which echoes. It returns the config's and the database's paths.
func writeDemoConfig(t *testing.T, server string) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath = filepath.Join(dir, "passerelle.toml")
	dbPath = filepath.Join(dir, "db", "passerelle.db")
	cfg := fmt.Sprintf(`log_level = "debug"
[xmpp]
server = %q
reconnect_min = "50ms"
reconnect_max = "500ms"
ping_interval = "1s"
[database]
path = %q
[access]
allow_domains = ["example.test"]
[[transport]]
kind = "testnet"
domain = %q
secret = %q
[[transport.options.accounts]]
username = "legacy"
password = "pw"
contacts = ["friend@demo.example"]
`, server, dbPath, killDomain, killSecret)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath
}

// process is one run of the real binary.
type process struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when it has exited
	err    error         // Wait's result, once done
	stderr *testserver.SyncBuffer
}

// startProcess runs the binary with cfg; its output is shown if the test
// fails, and it is killed at the end of the test.
func startProcess(t *testing.T, bin, cfg string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, "-config", cfg), done: make(chan struct{}), stderr: &testserver.SyncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("passerelle (pid %d) output:\n%s", p.cmd.Process.Pid, gwtest.Tail(p.stderr.String(), 20000))
		}
	})
	return p
}

func (p *process) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// waitServing waits until the gateway answers a ping through Prosody.
func waitServing(t *testing.T, c *xmpptest.Client) {
	t.Helper()
	deadline := time.Now().Add(2 * killWait)
	for i := 0; ; i++ {
		res := c.IQ(t, killWait, fmt.Sprintf(`<iq type='get' to='%s' id='serving-%d'><ping xmlns='urn:xmpp:ping'/></iq>`, killDomain, i))
		if res.Type == "result" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway does not answer: %s", res)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dialUser(t tb.TB, p *testserver.XMPP, name string) *xmpptest.Client {
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	return xmpptest.Dial(t, ctx, p.C2SAddr, jid.MustParse(name+"@example.test"), name+"-pw")
}

const registerForm = `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>` +
	`<field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field>` +
	`<field var='username'><value>legacy</value></field><field var='password'><value>pw</value></field></x></query>`

// drain takes every stanza that match accepts out of c's buffer.
func drain(c *xmpptest.Client, match func(*xmpptest.Stanza) bool) int {
	n := 0
	for {
		got := false
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Expect(&tb.Background{}, time.Millisecond, match)
			got = true
		}()
		<-done
		if !got {
			return n
		}
		n++
	}
}

// TestKill9DuringRegistrations runs the real binary and kills it with
// SIGKILL while 30 users register concurrently through XEP-0077 and 5
// registered users chat. Afterwards the bbolt file passes bbolt's
// consistency check, every registration whose iq result a client received
// is stored with its secret readable, and a new process logs the users
// who are online in again without them sending anything: they see the
// transport available and a message round-trips.
func TestKill9DuringRegistrations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const registrants, chatters = 30, 5
	var users []testserver.User
	for i := range chatters {
		users = append(users, testserver.User{Name: fmt.Sprintf("chat%d", i), Password: fmt.Sprintf("chat%d-pw", i)})
	}
	for i := range registrants {
		users = append(users, testserver.User{Name: fmt.Sprintf("reg%02d", i), Password: fmt.Sprintf("reg%02d-pw", i)})
	}
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     "example.test",
		Components: []testserver.Component{{Domain: killDomain, Secret: killSecret}},
		Users:      users,
	})
	bin := buildDemo(t)
	cfg, dbPath := writeDemoConfig(t, p.ComponentAddr)
	gw := startProcess(t, bin, cfg)

	// The chatters register (the whole XEP-0100 handshake) and are logged in.
	chat := make([]*xmpptest.Client, chatters)
	for i := range chat {
		c := dialUser(t, p, fmt.Sprintf("chat%d", i))
		if i == 0 {
			waitServing(t, c)
		}
		c.SendRaw(t, `<presence/>`)
		if res := c.IQ(t, killWait, `<iq type='set' to='`+killDomain+`' id='reg'>`+registerForm+`</iq>`); res.Type != "result" {
			t.Fatalf("chat%d: registration: %s", i, res)
		}
		c.Expect(t, killWait, xmpptest.PresenceFrom(killDomain, "subscribe"))
		c.SendRaw(t, `<presence to='`+killDomain+`' type='subscribed'/>`)
		c.SendRaw(t, `<presence to='`+killDomain+`' type='subscribe'/>`)
		c.Expect(t, killWait, xmpptest.PresenceFrom(killDomain, ""))
		chat[i] = c
	}

	// Chat traffic: each chatter writes to the echoing contact every 20ms.
	bg := &tb.Background{Test: t}
	stopChat := make(chan struct{})
	var chatWG sync.WaitGroup
	for i, c := range chat {
		chatWG.Add(1)
		go func() {
			defer chatWG.Done()
			for n := 0; n < 2000; n++ {
				select {
				case <-stopChat:
					return
				case <-time.After(20 * time.Millisecond):
				}
				c.SendRaw(bg, fmt.Sprintf(`<message to='%s' type='chat' id='c%d-%d'><body>chat %d line %d</body></message>`, friendJID, i, n, i, n))
			}
		}()
	}
	chat[0].Expect(t, killWait, xmpptest.MessageFrom(friendJID)) // flowing

	// Concurrent registrations; the process is killed once a third of them
	// were acknowledged.
	var (
		mu       sync.Mutex
		acked    = map[string]bool{} // user → the client got the iq result
		approved = map[string]*xmpptest.Client{}
		ackedCh  = make(chan struct{}, registrants)
		regWG    sync.WaitGroup
	)
	for i := range registrants {
		regWG.Add(1)
		go func() {
			defer regWG.Done()
			time.Sleep(time.Duration(i) * 15 * time.Millisecond)
			name := fmt.Sprintf("reg%02d", i)
			c := dialUser(bg, p, name)
			c.SendRaw(bg, `<presence/>`)
			res := c.IQ(bg, killWait, `<iq type='set' to='`+killDomain+`' id='reg'>`+registerForm+`</iq>`)
			if res.Type != "result" {
				return // refused or unanswered: the kill came first
			}
			mu.Lock()
			acked[name+"@example.test"] = true
			mu.Unlock()
			ackedCh <- struct{}{}
			c.Expect(bg, killWait, xmpptest.PresenceFrom(killDomain, "subscribe"))
			c.SendRaw(bg, `<presence to='`+killDomain+`' type='subscribed'/>`)
			c.SendRaw(bg, `<presence to='`+killDomain+`' type='subscribe'/>`)
			mu.Lock()
			approved[name+"@example.test"] = c
			mu.Unlock()
		}()
	}
	for range registrants / 3 {
		select {
		case <-ackedCh:
		case <-time.After(3 * killWait):
			t.Fatalf("registrations do not get through: %v", bg.Failures())
		}
	}
	gw.kill9()
	regWG.Wait()
	close(stopChat)
	chatWG.Wait()
	mu.Lock()
	t.Logf("killed with %d of %d registrations acknowledged, %d approved", len(acked), registrants, len(approved))
	mu.Unlock()

	// The file is consistent, and every acknowledged registration is there.
	checkBolt(t, dbPath)
	store, err := registry.Open(dbPath, registry.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open the registry after the kill: %v", err)
	}
	for user := range acked {
		r, err := store.Registration(context.Background(), user, killDomain)
		if err != nil {
			t.Errorf("acknowledged registration of %s: %v", user, err)
			continue
		}
		if r.Fields["username"] != "legacy" || r.Secrets["password"] != "pw" {
			t.Errorf("registration of %s after the kill: fields %v, password readable: %v", user, r.Fields, r.Secrets["password"] == "pw")
		}
	}
	for i := range chatters {
		if _, err := store.Registration(context.Background(), fmt.Sprintf("chat%d@example.test", i), killDomain); err != nil {
			t.Errorf("registration of chat%d: %v", i, err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// What the killed process sent is no proof of the new one's logins.
	time.Sleep(200 * time.Millisecond)
	for _, c := range chat {
		drain(c, xmpptest.PresenceFrom(killDomain, ""))
		drain(c, xmpptest.MessageFrom(friendJID))
	}
	for _, c := range approved {
		drain(c, xmpptest.PresenceFrom(killDomain, ""))
	}

	// A new process logs in the users who are online, with nothing sent by
	// them: the transport shows available (logged in to the network), and
	// for the chatters a message round-trips.
	gw = startProcess(t, bin, cfg)
	for i, c := range chat {
		c.Expect(t, 2*killWait, xmpptest.PresenceFrom(killDomain, ""))
		body := fmt.Sprintf("after the kill %d", i)
		c.SendRaw(t, `<message to='`+friendJID+`' type='chat' id='after'><body>`+body+`</body></message>`)
		c.Expect(t, killWait, func(s *xmpptest.Stanza) bool {
			return xmpptest.MessageFrom(friendJID)(s) && s.Text("", "body") == "echo: "+body
		})
	}
	for user, c := range approved {
		if p := c.Expect(t, 2*killWait, xmpptest.PresenceFrom(killDomain, "")); p.Text("", "show") != "" {
			t.Errorf("%s after the restart: %s", user, p)
		}
	}
	_ = gw.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-gw.done:
		if gw.err != nil {
			t.Errorf("the new process, stopped with SIGTERM: %v", gw.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the new process did not stop on SIGTERM")
	}
	checkBolt(t, dbPath)
}

// checkBolt runs bbolt's consistency check on the file.
func checkBolt(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt open %s: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Errorf("bbolt consistency check of %s: %v", path, err)
	}
}

// TestSecondProcessFailsFast starts the real binary on a database another
// process holds: it exits non-zero at once, says which file and why, and
// the first process keeps serving.
func TestSecondProcessFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     "example.test",
		Components: []testserver.Component{{Domain: killDomain, Secret: killSecret}},
		Users:      []testserver.User{{Name: "alice", Password: "alice-pw"}},
	})
	bin := buildDemo(t)
	cfg, dbPath := writeDemoConfig(t, p.ComponentAddr)
	first := startProcess(t, bin, cfg)
	c := dialUser(t, p, "alice")
	waitServing(t, c)

	start := time.Now()
	second := startProcess(t, bin, cfg)
	select {
	case <-second.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second process on the same database is still running after 10s")
	}
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(second.err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("second process: %v, want a non-zero exit", second.err)
	}
	// The lock timeout is 1s; the rest of the bound is room for a loaded
	// machine, not a measure of speed. Without a timeout it would wait forever.
	if took > 5*time.Second {
		t.Errorf("the second process took %v to give up, want about the 1s lock timeout", took)
	}
	msg := second.stderr.String()
	if !strings.Contains(msg, dbPath) || !strings.Contains(msg, "another process") {
		t.Errorf("the message does not name the database and say another process holds it:\n%s", msg)
	}
	t.Logf("second process: %s", strings.TrimSpace(msg))

	select {
	case <-first.done:
		t.Fatalf("the first process exited: %v", first.err)
	default:
	}
	res := c.IQ(t, killWait, `<iq type='get' to='`+killDomain+`' id='still'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if res.Type != "result" {
		t.Errorf("the first process after the second one failed: %s", res)
	}
}
