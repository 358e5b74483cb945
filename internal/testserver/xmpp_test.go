package testserver_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestXMPPServers starts each server kind through the selector: users given
// at start and added later log in, a message between them is delivered, the
// accounts survive a restart, and Stop leaves no process and no epmd behind.
func TestXMPPServers(t *testing.T) {
	for _, kind := range []string{testserver.KindProsody, testserver.KindEjabberd} {
		t.Run(kind, func(t *testing.T) {
			t.Setenv(testserver.XMPPServerEnv, kind)
			epmdBefore := listening("127.0.0.1:4369")
			s := testserver.StartXMPP(t, testserver.XMPPConfig{
				Domain:     "example.test",
				Components: []testserver.Component{{Domain: "gw.example.test", Secret: "s"}},
				Users:      []testserver.User{{Name: "alice", Password: "alice-pw"}},
			})
			if s.Kind != kind {
				t.Fatalf("asked for %s, got %s", kind, s.Kind)
			}
			s.AddUser(t, "bob", "first-pw")
			s.AddUser(t, "bob", "bob-pw") // a new password for an existing user
			exchange(t, s)
			s.Restart(t)
			exchange(t, s)
			s.Stop()
			s.Stop()
			if s.Running() == nil {
				t.Error("Running after Stop")
			}
			for _, addr := range []string{s.C2SAddr, s.ComponentAddr} {
				if listening(addr) {
					t.Errorf("%s still open after Stop", addr)
				}
			}
			if left := processesMentioning(s.RunDir); len(left) > 0 {
				t.Errorf("processes left behind:\n%s", strings.Join(left, "\n"))
			}
			if !epmdBefore && listening("127.0.0.1:4369") {
				t.Error("an epmd was started")
			}

			// A server left running is gone once its test ends.
			var dir, addr string
			t.Run("cleanup", func(t *testing.T) {
				s := testserver.StartXMPP(t, testserver.XMPPConfig{Components: []testserver.Component{{Domain: "gw.example.test", Secret: "s"}}})
				dir, addr = s.RunDir, s.C2SAddr
			})
			if dir == "" {
				t.Fatal("the server did not start")
			}
			if left := processesMentioning(dir); len(left) > 0 || listening(addr) {
				t.Errorf("after the test: %s open: %v; processes left behind:\n%s", addr, listening(addr), strings.Join(left, "\n"))
			}
		})
	}
}

func TestXMPPKind(t *testing.T) {
	for env, want := range map[string]string{"": "prosody", "prosody": "prosody", "ejabberd": "ejabberd", "openfire": ""} {
		t.Setenv(testserver.XMPPServerEnv, env)
		got, err := testserver.XMPPKind()
		if got != want || (err != nil) != (want == "") {
			t.Errorf("%s=%q: got %q, %v", testserver.XMPPServerEnv, env, got, err)
		}
	}
}

// exchange logs alice and bob in and has alice send bob a message.
func exchange(t *testing.T, s *testserver.XMPP) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice := xmpptest.Dial(t, ctx, s.C2SAddr, jid.MustParse("alice@example.test"), "alice-pw")
	defer alice.Close()
	bob := xmpptest.Dial(t, ctx, s.C2SAddr, jid.MustParse("bob@example.test"), "bob-pw")
	defer bob.Close()
	alice.SendRaw(t, `<message to='`+bob.JID().String()+`' type='chat'><body>hello</body></message>`)
	m := bob.Expect(t, 10*time.Second, xmpptest.MessageFrom(alice.JID().String()))
	if m.Text("jabber:client", "body") != "hello" || m.Has("urn:xmpp:delay", "delay") {
		t.Errorf("bob got %s", m)
	}
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// processesMentioning lists the live processes whose command line contains s.
func processesMentioning(s string) []string {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var found []string
	for _, path := range cmdlines {
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "stat"))
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			continue
		}
		found = append(found, strings.ReplaceAll(string(b), "\x00", " "))
	}
	return found
}
