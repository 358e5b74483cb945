package irc

import (
	"context"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/hostileirc"
	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/transports"
)

// TestEndlessLinesStopReconnecting: a server that answers every connection,
// once joined to the user's channel, with a line that never ends is not
// reconnected to for ever: after maxViolations connections the user is
// told and the room left.
func TestEndlessLinesStopReconnecting(t *testing.T) {
	srv := hostileirc.Start(t, hostileirc.Config{Name: "a.test"})
	off := false
	tr, err := New(Config{
		Networks:     map[string]NetworkConfig{"a.example": {Host: "127.0.0.1", Port: srv.Port(), TLS: &off}},
		ReconnectMin: transports.Duration{Duration: 50 * time.Millisecond},
		ReconnectMax: transports.Duration{Duration: 200 * time.Millisecond},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess, sink := login(t, tr, transports.Values{fieldNick: "alice"})
	if err := sess.(*Session).JoinRoom(context.Background(), "#c@a.example", "alice", ""); err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat("z", 64<<10))
	serve := func(c *hostileirc.Conn) {
		c.Expect(t, bindWait, irctest.Command("JOIN", "#c"))
		_ = c.Send(":alice!u@h JOIN #c", ":a.test 366 alice #c :End of /NAMES list.")
		_ = c.Write([]byte(":bob!b@h PRIVMSG #c :"))
		for sent := 0; sent < 4<<20; sent += len(chunk) {
			if c.Write(chunk) != nil {
				break
			}
		}
		select {
		case <-c.Done():
		case <-time.After(bindWait):
			t.Fatal("the connection was not dropped")
		}
	}
	for i := 0; i < maxViolations; i++ {
		serve(srv.Next(t, bindWait))
	}
	deadline := time.After(bindWait)
	for left := false; !left; {
		select {
		case ev := <-sink:
			if l, ok := ev.(transports.RoomLeft); ok {
				if l.Err == nil || !strings.Contains(l.Err.Error(), "not connecting again") {
					t.Errorf("room left with %v", l.Err)
				}
				left = true
			}
		case <-deadline:
			t.Fatal("the room was never left")
		}
	}
	time.Sleep(time.Second) // several backoffs
	if n := srv.Accepted(); n != maxViolations {
		t.Errorf("the server saw %d connections; want %d", n, maxViolations)
	}
}
