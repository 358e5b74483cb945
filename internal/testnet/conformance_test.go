package testnet_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/transporttest"
)

var (
	_ transports.Transport     = (*testnet.Network)(nil)
	_ transports.Session       = (*testnet.Session)(nil)
	_ transports.Transport     = testnet.RoomNetwork{}
	_ transports.RoomTransport = testnet.RoomNetwork{}
	_ transports.Scoper        = testnet.RoomNetwork{}
)

// TestConformance runs the transport contract's suite on the in-memory
// network, with rooms.
func TestConformance(t *testing.T) {
	n := testnet.New()
	var seq atomic.Int64
	transporttest.Run(t, transporttest.Harness{
		Transport: n.WithRooms(),
		NewAccount: func(t *testing.T) transporttest.Account {
			name := fmt.Sprintf("user%d", seq.Add(1))
			n.AddAccount(name, "pw-"+name)
			return transporttest.Account{
				User:   name + "@example.test",
				Values: transports.Values{"username": name, "password": "pw-" + name, "echo": "false"},
				Nick:   name,
			}
		},
		NewPeer: func(t *testing.T, a transporttest.Account) transporttest.Peer {
			return &peer{net: n, user: a.User, addr: fmt.Sprintf("peer%d@test.example", seq.Add(1))}
		},
		NewRoom: func(t *testing.T) string {
			return fmt.Sprintf("#room%d@test.example", seq.Add(1))
		},
		ReportsStatus: true,
		Wait:          5 * time.Second,
	})
}

// peer is a user of the in-memory network: it speaks by injecting events
// into the account's session and hears what the network received.
type peer struct {
	net  *testnet.Network
	user string // the account's XMPP user
	addr string
}

func (p *peer) Address() string { return p.addr }

func (p *peer) Send(t *testing.T, body string) {
	p.inject(transports.Message{From: p.addr, Type: transports.Chat, Body: body})
}

func (p *peer) Expect(t *testing.T, body string) {
	t.Helper()
	p.await(t, p.addr, body)
}

func (p *peer) Join(*testing.T, string) {}

func (p *peer) Say(t *testing.T, room, body string) {
	p.inject(transports.Message{From: room, Nick: "peer", Type: transports.Groupchat, Body: body})
}

func (p *peer) Hear(t *testing.T, room, body string) {
	t.Helper()
	p.await(t, room, body)
}

// inject sends ev from the network to the account's live session; with
// none (it was closed) the message is lost, as on a real network.
func (p *peer) inject(ev transports.Event) {
	if s, ok := p.net.Session(p.user); ok {
		s.Inject(ev)
	}
}

func (p *peer) await(t *testing.T, to, body string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range p.net.Received() {
			if strings.EqualFold(m.To, to) && strings.Contains(m.Body, body) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s received no %q", to, body)
}
