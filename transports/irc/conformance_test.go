package irc_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/irc"
	"passerelle.dev/passerelle/transports/transporttest"
)

var (
	_ transports.Transport      = (*irc.Transport)(nil)
	_ transports.RoomTransport  = (*irc.Transport)(nil)
	_ transports.Scoper         = (*irc.Transport)(nil)
	_ transports.Session        = (*irc.Session)(nil)
	_ transports.Rooms          = (*irc.Session)(nil)
	_ transports.ContactWatcher = (*irc.Session)(nil)
)

// TestConformance runs the transport contract's suite on a real ngircd.
func TestConformance(t *testing.T) {
	server := testserver.StartNgircd(t, testserver.NgircdConfig{ServerName: network})
	off := false
	tr, err := irc.New(irc.Config{
		Networks:       map[string]irc.NetworkConfig{network: {Host: "127.0.0.1", Port: server.Port(), TLS: &off}},
		LinesPerSecond: 50,
		Burst:          50,
		ReconnectMin:   transports.Duration{Duration: 200 * time.Millisecond},
		ReconnectMax:   transports.Duration{Duration: time.Second},
	}, nil)
	if err != nil {
		t.Fatalf("irc.New: %v", err)
	}
	var seq atomic.Int64
	transporttest.Run(t, transporttest.Harness{
		Transport: tr,
		NewAccount: func(t *testing.T) transporttest.Account {
			nick := fmt.Sprintf("acct%d", seq.Add(1))
			values, err := tr.Register(context.Background(), transports.RegisterRequest{
				User: nick + "@example.test", Values: transports.Values{"nick": nick},
			})
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			return transporttest.Account{User: nick + "@example.test", Values: values, Nick: nick}
		},
		NewPeer: func(t *testing.T, a transporttest.Account) transporttest.Peer {
			nick := fmt.Sprintf("peer%d", seq.Add(1))
			addr, err := tr.ParseAddress(nick + "@" + network)
			if err != nil {
				t.Fatal(err)
			}
			return &ircPeer{c: irctest.Dial(t, server.Addr(), nick), addr: addr, account: a.Nick}
		},
		NewRoom: func(t *testing.T) string {
			room, err := tr.ParseAddress(fmt.Sprintf("#conf%d@%s", seq.Add(1), network))
			if err != nil {
				t.Fatal(err)
			}
			return room
		},
		Wait: wait,
	})
}

// ircPeer is a raw IRC client on the same server as the account.
type ircPeer struct {
	c       *irctest.Client
	addr    string // canonical address
	account string // the account's nick
}

func (p *ircPeer) Address() string { return p.addr }

func (p *ircPeer) Send(t *testing.T, body string) {
	p.c.Send("PRIVMSG " + p.account + " :" + body)
}

func (p *ircPeer) Expect(t *testing.T, body string) {
	t.Helper()
	p.c.Expect(t, wait, privmsg(p.account, p.c.Nick(), body))
}

func (p *ircPeer) Join(t *testing.T, room string) {
	t.Helper()
	p.c.Join(t, channelOf(room))
}

func (p *ircPeer) Say(t *testing.T, room, body string) {
	p.c.Send("PRIVMSG " + channelOf(room) + " :" + body)
}

func (p *ircPeer) Hear(t *testing.T, room, body string) {
	t.Helper()
	p.c.Expect(t, wait, privmsg(p.account, channelOf(room), body))
}

// channelOf is the channel of a room address (#channel@network).
func channelOf(room string) string {
	ch, _, _ := strings.Cut(room, "@")
	return ch
}

// privmsg matches a PRIVMSG from nick to target whose text contains body.
func privmsg(nick, target, body string) func(irctest.Message) bool {
	return irctest.From(nick, func(m irctest.Message) bool {
		return m.Command == "PRIVMSG" && len(m.Params) == 2 && strings.EqualFold(m.Params[0], target) && strings.Contains(m.Params[1], body)
	})
}
