package gateway_test

import (
	"context"
	"errors"
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
	held    atomic.Bool
	release chan struct{} // closed to let held calls go
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
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.net.release:
			return errors.New("released")
		}
	}
	return s.Session.Send(ctx, m)
}

// TestMailboxBoundsBytes: while a user's loop is stuck, the stanzas
// waiting for it are bounded in bytes, not only in number: of 40 messages
// of 100 kB (far below the count limit), those beyond a 2 MiB bound get
// resource-constraint.
func TestMailboxBoundsBytes(t *testing.T) {
	var net *stuck
	e := newEnv(t, envOptions{
		limits: transports.Limits{MessagesPerMinute: 6000, Burst: 1000, MaxMessageBytes: 1 << 20},
		wrap: func(n *testnet.Network) transports.Transport {
			net = &stuck{Network: n, release: make(chan struct{})}
			return net
		},
		// The loop stays stuck in the first Send while the rest arrive,
		// however slowly the server passes them on.
		legacyTimeout: time.Minute,
		queueBytes:    2 << 20,
	})
	c := e.aliceOnline()
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))
	net.held.Store(true)
	defer close(net.release)

	big := strings.Repeat("x", 100_000)
	const n = 40
	start := time.Now()
	for i := range n {
		c.SendRaw(t, `<message to='`+friend+`' id='big`+strconv.Itoa(i)+`' type='chat'><body>`+big+`</body></message>`)
	}
	// The first message holds the loop; those beyond the bound are
	// refused at once.
	m := c.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return xmpptest.MessageFrom(friend)(s) && s.Type == "error" && s.ErrorCondition() == "resource-constraint"
	})
	if !strings.Contains(m.Inner, "in flight") {
		t.Errorf("a message beyond the queue's bytes: %s", m)
	}
	// About 20 fit (fewer arrive if a slow server made the keep-alive
	// reconnect meanwhile, which loses what was in flight).
	if id, _ := strconv.Atoi(strings.TrimPrefix(m.ID, "big")); id < 15 {
		t.Errorf("refused %s first: a 2 MiB bound holds about 20 such messages", m.ID)
	}
	t.Logf("first refusal %s after %v", m.ID, time.Since(start))
}
