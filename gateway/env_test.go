package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/internal/gwtest"
	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

const (
	serverDomain = "example.test"
	gwDomain     = "gw.example.test"
	gwSecret     = "component-secret"
	wait         = 10 * time.Second
)

// env is one real XMPP server (Prosody or ejabberd, see
// testserver.StartXMPP), one gateway connected to it (through a proxy
// that can cut the connection) and the test network behind the gateway.
type env struct {
	t      *testing.T
	server *testserver.XMPP
	proxy  *testserver.Proxy
	store  *registry.DB
	dbPath string
	net    *testnet.Network
	gw     *gateway.Gateway
	stop   func()
}

type envOptions struct {
	allowed func(string) bool
	admins  []string
	limits  transports.Limits
	metrics *gateway.Metrics
	// wrap, if set, puts a transport of the test's around the test network.
	wrap func(*testnet.Network) transports.Transport
	// legacyTimeout bounds each call into a legacy session (2s if zero).
	legacyTimeout time.Duration
	queueBytes    int // gateway.Config.QueueBytes
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	p := testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     serverDomain,
		Components: []testserver.Component{{Domain: gwDomain, Secret: gwSecret}},
		Users: []testserver.User{
			{Name: "alice", Password: "alice-pw"},
			{Name: "bob", Password: "bob-pw"},
		},
	})
	e := &env{t: t, server: p, proxy: testserver.NewProxy(t, p.ComponentAddr), net: testnet.New()}
	e.net.AddAccount("alice-legacy", "legacy-pw", "friend@test.example")
	e.dbPath = filepath.Join(t.TempDir(), "passerelle.db")
	if opts.allowed == nil {
		opts.allowed = func(d string) bool { return d == serverDomain }
	}
	e.start(opts)
	return e
}

// start opens the store and runs a gateway until stopGateway or the test's end.
func (e *env) start(opts envOptions) {
	e.t.Helper()
	var tr transports.Transport = e.net
	if opts.wrap != nil {
		tr = opts.wrap(e.net)
	}
	g := gwtest.Start(e.t, gwtest.Options{
		Domain:    gwDomain,
		Secret:    gwSecret,
		Server:    e.proxy.Addr,
		Transport: tr,
		DBPath:    e.dbPath,
		Allowed:   opts.allowed,
		IsAdmin:   func(j string) bool { return slices.Contains(opts.admins, j) },
		Limits:    opts.limits,
		Metrics:   opts.metrics,

		LegacyTimeout: opts.legacyTimeout,
		QueueBytes:    opts.queueBytes,
	})
	e.gw, e.store, e.stop = g.Gateway, g.Store, g.Stop
}

func (e *env) waitConnected() {
	e.t.Helper()
	deadline := time.Now().Add(wait)
	for !e.gw.Connected() {
		if time.Now().After(deadline) {
			e.t.Fatalf("gateway did not connect to %s within %v\n%s", e.server.Kind, wait, e.server.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client logs a user in to the XMPP server with a real XMPP client.
func (e *env) client(name string) *xmpptest.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return xmpptest.Dial(e.t, ctx, e.server.C2SAddr, jid.MustParse(name+"@"+serverDomain), name+"-pw")
}

// register registers c with the gateway through XEP-0077 and completes the
// XEP-0100 subscription handshake. Like a real client, c is online first
// (servers deliver subscription requests to available resources).
func (e *env) register(c *xmpptest.Client, username, password string) {
	e.t.Helper()
	register(e.t, c, username, password)
}

func register(t testing.TB, c *xmpptest.Client, username, password string) {
	t.Helper()
	c.SendRaw(t, `<presence/>`)
	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='reg1'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": username, "password": password})+`</query></iq>`)
	if res.Type != "result" {
		t.Fatalf("registration failed: %s", res)
	}
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribe"))
	c.SendRaw(t, `<presence to='`+gwDomain+`' type='subscribed'/>`)
	c.SendRaw(t, `<presence to='`+gwDomain+`' type='subscribe'/>`)
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribed"))
}

// failRecorder lets a helper goroutine use testing.TB: failures are kept
// for the test goroutine to report, and FailNow stops only the helper.
type failRecorder struct {
	testing.TB
	mu  sync.Mutex
	err error
}

var errFailNow = errors.New("failRecorder: FailNow")

func (f *failRecorder) Helper() {}

func (f *failRecorder) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = errors.Join(f.err, fmt.Errorf(format, args...))
}

func (f *failRecorder) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	panic(errFailNow)
}

func (f *failRecorder) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// online waits until the transport shows the user as logged in to the
// legacy network; the subscription handshake made the server send it the
// user's presence.
func (e *env) online(c *xmpptest.Client) {
	e.t.Helper()
	c.Expect(e.t, wait, xmpptest.PresenceFrom(gwDomain, ""))
	eventually(e.t, "the legacy session exists", func() bool {
		_, ok := e.net.Session(c.JID().Bare().String())
		return ok
	})
}

// aliceOnline logs alice in, registers her with the gateway and waits until
// she is logged in to the legacy network.
func (e *env) aliceOnline() *xmpptest.Client {
	e.t.Helper()
	c := e.client("alice")
	e.register(c, "alice-legacy", "legacy-pw")
	e.online(c)
	return c
}

func submitForm(values map[string]string) string {
	var b strings.Builder
	b.WriteString(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field>`)
	for k, v := range values {
		b.WriteString(`<field var='` + k + `'><value>` + v + `</value></field>`)
	}
	b.WriteString(`</x>`)
	return b.String()
}

// eventually polls cond until it holds or the wait is over.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
