package gateway_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// panicky is the test network with a Login and a Register that panic
// while their flag is set, as a transport's bug met on a poison input
// would.
type panicky struct {
	*testnet.Network
	login, register atomic.Bool
	logins          atomic.Int32 // calls to Login, panicking or not
}

func (p *panicky) Login(ctx context.Context, req transports.LoginRequest) (transports.Session, error) {
	p.logins.Add(1)
	if p.login.Load() {
		panic("poison login")
	}
	return p.Network.Login(ctx, req)
}

func (p *panicky) Register(ctx context.Context, req transports.RegisterRequest) (transports.Values, error) {
	if p.register.Load() {
		panic("poison registration")
	}
	return p.Network.Register(ctx, req)
}

// TestPanicsCostOneEvent: a transport's Register or Login that panics
// costs that registration or login, answered as an internal error, not the
// process; a panicking login is not retried on its own, and the user's
// next presence after going offline logs in again.
func TestPanicsCostOneEvent(t *testing.T) {
	var p *panicky
	e := newEnv(t, envOptions{wrap: func(n *testnet.Network) transports.Transport {
		p = &panicky{Network: n}
		return p
	}})
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)

	p.register.Store(true)
	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='reg0'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy", "password": "legacy-pw"})+`</query></iq>`)
	if res.Type != "error" || res.ErrorCondition() != "internal-server-error" {
		t.Fatalf("registration that panicked: got %s, want internal-server-error", res)
	}
	p.register.Store(false)

	p.login.Store(true)
	e.register(c, "alice-legacy", "legacy-pw")
	st := c.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return xmpptest.PresenceFrom(gwDomain, "")(s) && strings.Contains(s.Text("jabber:client", "status"), "Login failed")
	})
	if show := st.Text("jabber:client", "show"); show != "xa" {
		t.Errorf("transport presence after a panicking login: %s", st)
	}
	// Not retried on its own (the test gateway retries other failures
	// after 100 ms).
	time.Sleep(time.Second)
	if n := p.logins.Load(); n != 1 {
		t.Errorf("%d login attempts after a panic, want 1", n)
	}
	// The gateway still answers.
	if res := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`); res.Type != "result" {
		t.Errorf("ping after the panics: %s", res)
	}

	p.login.Store(false)
	c.SendRaw(t, `<presence type='unavailable'/>`)
	c.SendRaw(t, `<presence/>`)
	e.online(c)
}
