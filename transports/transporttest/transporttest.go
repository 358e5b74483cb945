// Package transporttest is the conformance suite of the transport contract:
// each transport's tests call Run with a Harness on its real network (the
// in-memory one for testnet), and the suite checks what the gateway relies
// on: login, messages both ways, Close and what may follow it, and rooms.
package transporttest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/transports"
)

// Harness is what the suite needs of a transport and its network.
type Harness struct {
	// Transport is the transport under test.
	Transport transports.Transport
	// NewAccount returns the login of a fresh legacy account; each call
	// gives another one.
	NewAccount func(t *testing.T) Account
	// NewPeer returns another user of the network, who exchanges messages
	// with account. On a transport with rooms it is a RoomPeer.
	NewPeer func(t *testing.T, account Account) Peer
	// NewRoom names a fresh room, canonical, for transports with rooms.
	NewRoom func(t *testing.T) string
	// ReportsStatus says that sessions deliver transports.Status (a
	// transport of several networks, such as IRC, reports each network's
	// presence instead).
	ReportsStatus bool
	// Wait bounds each expectation; zero means 15 seconds.
	Wait time.Duration
}

// Account is a legacy account's login.
type Account struct {
	// User is the XMPP user's bare JID.
	User   string
	Values transports.Values
	// Nick is the nickname the account asks for in rooms.
	Nick string
}

// Peer is another user of the legacy network. Its methods fail t
// themselves when they cannot do what they are asked in time.
type Peer interface {
	// Address is the peer's canonical legacy address: the account sends to
	// it, and messages from the peer come from it.
	Address() string
	// Send sends body from the peer to the account.
	Send(t *testing.T, body string)
	// Expect waits until the peer received a message from the account
	// whose body contains body.
	Expect(t *testing.T, body string)
}

// RoomPeer is a Peer that takes part in rooms.
type RoomPeer interface {
	Peer
	// Join enters room and returns once the peer is in it.
	Join(t *testing.T, room string)
	// Say sends body to room.
	Say(t *testing.T, room, body string)
	// Hear waits until the peer saw a message in room whose body contains
	// body.
	Hear(t *testing.T, room, body string)
}

// deliverDelay is how long the sink takes over each event after Close's
// test starts: long enough for a delivery that Close does not wait for to
// still be under way when Close returns.
const deliverDelay = 200 * time.Millisecond

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	if h.Wait == 0 {
		h.Wait = 15 * time.Second
	}
	t.Run("LoginSendDeliverClose", func(t *testing.T) { testExchange(t, h) })
	t.Run("AfterClose", func(t *testing.T) { testAfterClose(t, h) })
	if _, ok := h.Transport.(transports.RoomTransport); ok {
		t.Run("Rooms", func(t *testing.T) { testRooms(t, h) })
	}
}

// login logs a fresh account in with a recording sink that takes delay
// over each event, closing the session at the end of the test.
func login(t *testing.T, h Harness, delay time.Duration) (Account, transports.Session, *Sink) {
	t.Helper()
	a := h.NewAccount(t)
	sink := NewSink(t)
	sink.Delay = delay
	ctx, cancel := context.WithTimeout(context.Background(), h.Wait)
	defer cancel()
	sess, err := h.Transport.Login(ctx, transports.LoginRequest{
		User: a.User, Values: a.Values, Presence: transports.Presence{Available: true},
		State: NewState(), Events: sink, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if sess == nil {
		t.Fatal("Login returned no session and no error")
	}
	t.Cleanup(func() { closeSession(t, h, sess, sink) })
	return a, sess, sink
}

// closeSession closes sess, which must return in time, and tells sink.
func closeSession(t *testing.T, h Harness, sess transports.Session, sink *Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.Wait)
	defer cancel()
	if err := sess.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	sink.Closed()
}

func send(t *testing.T, h Harness, sess transports.Session, m transports.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.Wait)
	defer cancel()
	if err := sess.Send(ctx, m); err != nil {
		t.Fatalf("Send to %s: %v", m.To, err)
	}
}

// testExchange: Login gives a session that reports its status, a message
// reaches the peer, the peer's answer comes back through Deliver, and Close
// returns.
func testExchange(t *testing.T, h Harness) {
	a, sess, sink := login(t, h, 0)
	if h.ReportsStatus {
		sink.Wait(t, h.Wait, "a connected Status", func(ev transports.Event) bool {
			st, ok := ev.(transports.Status)
			return ok && st.Connected
		})
	}
	peer := h.NewPeer(t, a)
	send(t, h, sess, transports.Message{To: peer.Address(), ID: "out-1", Type: transports.Chat, Body: "hello from the account"})
	peer.Expect(t, "hello from the account")
	peer.Send(t, "hello from the peer")
	sink.Wait(t, h.Wait, "the peer's message", func(ev transports.Event) bool {
		m, ok := ev.(transports.Message)
		return ok && strings.EqualFold(m.From, peer.Address()) && strings.Contains(m.Body, "hello from the peer")
	})
	closeSession(t, h, sess, sink)
}

// testAfterClose: after Close, Send errs at once, Close again is safe, and
// no event is delivered, even with a message from the peer on its way.
func testAfterClose(t *testing.T, h Harness) {
	a, sess, sink := login(t, h, deliverDelay)
	peer := h.NewPeer(t, a)
	send(t, h, sess, transports.Message{To: peer.Address(), ID: "out-1", Type: transports.Chat, Body: "before close"})
	peer.Expect(t, "before close")
	if w, ok := sess.(transports.ContactWatcher); ok {
		// Whatever a watch starts must end with the session.
		ctx, cancel := context.WithTimeout(context.Background(), h.Wait)
		err := w.Watch(ctx, peer.Address(), true)
		cancel()
		if err != nil {
			t.Errorf("Watch: %v", err)
		}
	}
	closeSession(t, h, sess, sink)
	peer.Send(t, "after close")

	ctx, cancel := context.WithTimeout(context.Background(), h.Wait)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- sess.Send(ctx, transports.Message{To: peer.Address(), ID: "out-2", Type: transports.Chat, Body: "sent after close"})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Send after Close returned no error")
		}
	case <-time.After(h.Wait):
		t.Fatal("Send after Close hangs")
	}
	closeSession(t, h, sess, sink)
	// Give a late event the time to show up; the sink fails the test on it.
	time.Sleep(time.Second)
}

// testRooms: join, a message both ways, leave; RoomJoined comes before the
// room's messages, and nothing of the room follows a RoomLeft.
func testRooms(t *testing.T, h Harness) {
	a, sess, sink := login(t, h, 0)
	rooms, ok := sess.(transports.Rooms)
	if !ok {
		t.Fatalf("the transport has rooms but its session (%T) does not implement transports.Rooms", sess)
	}
	peer, ok := h.NewPeer(t, a).(RoomPeer)
	if !ok {
		t.Fatal("the harness's peer of a room transport is not a RoomPeer")
	}
	room := h.NewRoom(t)
	if !h.Transport.(transports.RoomTransport).IsRoom(room) {
		t.Fatalf("IsRoom(%q) = false for the harness's room", room)
	}
	peer.Join(t, room)
	ctx, cancel := context.WithTimeout(context.Background(), h.Wait)
	defer cancel()
	if err := rooms.JoinRoom(ctx, room, a.Nick, ""); err != nil {
		t.Fatalf("JoinRoom: %v", err)
	}
	sink.Wait(t, h.Wait, "RoomJoined", func(ev transports.Event) bool {
		j, ok := ev.(transports.RoomJoined)
		return ok && strings.EqualFold(j.Room, room)
	})
	send(t, h, sess, transports.Message{To: room, ID: "room-1", Type: transports.Groupchat, Body: "hello room"})
	peer.Hear(t, room, "hello room")
	peer.Say(t, room, "hello from the peer")
	sink.Wait(t, h.Wait, "the peer's room message", func(ev transports.Event) bool {
		m, ok := ev.(transports.Message)
		return ok && strings.EqualFold(m.From, room) && strings.Contains(m.Body, "hello from the peer")
	})
	if err := rooms.LeaveRoom(ctx, room, "bye"); err != nil {
		t.Fatalf("LeaveRoom: %v", err)
	}
	closeSession(t, h, sess, sink)

	joined, left := false, false
	for _, ev := range sink.Events() {
		switch ev := ev.(type) {
		case transports.RoomJoined:
			if strings.EqualFold(ev.Room, room) {
				joined = true
			}
		case transports.RoomLeft:
			if strings.EqualFold(ev.Room, room) {
				left = true
			}
		case transports.Message:
			if !strings.EqualFold(ev.From, room) {
				continue
			}
			if !joined {
				t.Errorf("a message of %s came before RoomJoined: %+v", room, ev)
			}
			if left {
				t.Errorf("a message of %s came after RoomLeft: %+v", room, ev)
			}
		}
	}
}
