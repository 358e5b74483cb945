package gateway_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// stuck is the test network whose sessions' Send hangs while held, as a
// hung legacy server does: the user's loop waits there (bounded by the
// legacy timeout) and the user's next stanzas queue up.
type stuck struct {
	*testnet.Network
	held atomic.Bool
}

func (s *stuck) Login(ctx context.Context, req transports.LoginRequest) (transports.Session, error) {
	sess, err := s.Network.Login(ctx, req)
	if err != nil {
		return nil, err
	}
	return stuckSession{sess, s}, nil
}

type stuckSession struct {
	transports.Session
	net *stuck
}

func (s stuckSession) Send(ctx context.Context, m transports.Message) error {
	if s.net.held.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Session.Send(ctx, m)
}

// TestMailboxBoundsBytes: while a user's loop is stuck, the stanzas
// waiting for it are bounded in bytes, not only in number: a hundred big
// messages (20 MB in all, far below the count limit) are not all kept,
// the rest get resource-constraint.
func TestMailboxBoundsBytes(t *testing.T) {
	var net *stuck
	e := newEnv(t, envOptions{
		limits: transports.Limits{MessagesPerMinute: 6000, Burst: 1000, MaxMessageBytes: 1 << 20},
		wrap: func(n *testnet.Network) transports.Transport {
			net = &stuck{Network: n}
			return net
		},
	})
	c := e.aliceOnline()
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))
	net.held.Store(true)
	defer net.held.Store(false)

	big := strings.Repeat("x", 200_000)
	const n = 100
	start := time.Now()
	for i := range n {
		c.SendRaw(t, `<message to='`+friend+`' id='big`+strconv.Itoa(i)+`' type='chat'><body>`+big+`</body></message>`)
	}
	// The first message holds the loop; those that wait for it fail
	// later with the timeout. Those beyond the bound are refused at once.
	m := c.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return xmpptest.MessageFrom(friend)(s) && s.Type == "error" && s.ErrorCondition() == "resource-constraint"
	})
	if !strings.Contains(m.Inner, "in flight") {
		t.Errorf("a message beyond the queue's bytes: %s", m)
	}
	if id, _ := strconv.Atoi(strings.TrimPrefix(m.ID, "big")); id < 50 {
		t.Errorf("refused %s: the bound (16 MiB) holds more than %d such messages", m.ID, id)
	}
	t.Logf("first refusal %s after %v", m.ID, time.Since(start))
}
