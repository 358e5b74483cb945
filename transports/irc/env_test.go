package irc_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/gwtest"
	"passerelle.dev/passerelle/internal/hostileirc"
	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/irc"
)

const (
	serverDomain = "example.test"
	gwDomain     = "irc.example.test"
	gwSecret     = "irc-secret"
	network      = "irc.test"
	network2     = "irc2.test"
	badNetwork   = "hostile.test"
	wait         = 10 * time.Second
)

// env is a real XMPP server, a real ngircd, and a gateway with the IRC
// transport between them.
type env struct {
	t      *testing.T
	xmpp   *testserver.XMPP
	irc    *testserver.Ngircd
	irc2   *testserver.Inspircd
	bad    *hostileirc.Server // the scripted network hostile.test, with hostile set
	proxy  *testserver.Proxy  // between the gateway and Prosody, with proxy set
	gw     *gwtest.Gateway    // the running gateway
	dbPath string
	stop   func()
	logs   *testserver.SyncBuffer
	opts   envOptions
}

// envOptions vary the environment.
type envOptions struct {
	tls     bool // connect to the IRC server over TLS
	trustCA bool // with its CA configured (else verification must fail)
	// second adds the network irc2.test, an InspIRCd (which has MONITOR),
	// and slowPoll makes ISON polling too slow to notice anything.
	second   bool
	slowPoll bool
	// limits are the gateway's per-user limits (zero: the defaults).
	limits transports.Limits
	// proxy puts a testserver.Proxy, which can cut the component link,
	// between the gateway and Prosody.
	proxy bool
	// hostile adds the network hostile.test, a scripted server.
	hostile *hostileirc.Config
}

func newEnv(t *testing.T, opts ...envOptions) *env {
	t.Helper()
	e := &env{t: t, logs: &testserver.SyncBuffer{}}
	if len(opts) > 0 {
		e.opts = opts[0]
	}
	e.irc = testserver.StartNgircd(t, testserver.NgircdConfig{ServerName: network, TLS: e.opts.tls})
	if e.opts.second {
		e.irc2 = testserver.StartInspircd(t, testserver.InspircdConfig{ServerName: network2})
	}
	if e.opts.hostile != nil {
		e.bad = hostileirc.Start(t, *e.opts.hostile)
	}
	e.xmpp = testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     serverDomain,
		Components: []testserver.Component{{Domain: gwDomain, Secret: gwSecret}},
		Users: []testserver.User{
			{Name: "alice", Password: "alice-pw"},
			{Name: "carol", Password: "carol-pw"},
		},
	})
	if e.opts.proxy {
		e.proxy = testserver.NewProxy(t, e.xmpp.ComponentAddr)
	}
	e.dbPath = filepath.Join(t.TempDir(), "passerelle.db")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", gwtest.Tail(e.logs.String(), 6000))
		}
	})
	e.start()
	return e
}

// start runs a gateway until stopGateway or the end of the test.
func (e *env) start() {
	t := e.t
	t.Helper()
	log := gwtest.Logger(e.logs)
	useTLS := e.opts.tls
	nc := irc.NetworkConfig{Host: "127.0.0.1", Port: e.irc.Port(), TLS: &useTLS}
	if useTLS {
		nc.Port, nc.ServerName = e.irc.TLSPort(), network
		if e.opts.trustCA {
			nc.CAFile = e.irc.CAFile()
		}
	}
	nets := map[string]irc.NetworkConfig{network: nc}
	if e.irc2 != nil {
		off := false
		nets[network2] = irc.NetworkConfig{Host: "127.0.0.1", Port: e.irc2.Port(), TLS: &off}
	}
	if e.bad != nil {
		off := false
		nets[badNetwork] = irc.NetworkConfig{Host: "127.0.0.1", Port: e.bad.Port(), TLS: &off}
	}
	poll := 300 * time.Millisecond
	if e.opts.slowPoll {
		poll = time.Hour
	}
	tr, err := irc.New(irc.Config{
		Networks:         nets,
		LinesPerSecond:   50,
		Burst:            50,
		ReconnectMin:     transports.Duration{Duration: 200 * time.Millisecond},
		ReconnectMax:     transports.Duration{Duration: time.Second},
		PresenceInterval: transports.Duration{Duration: poll},
	}, log)
	if err != nil {
		t.Fatalf("irc.New: %v", err)
	}
	server := e.xmpp.ComponentAddr
	if e.proxy != nil {
		server = e.proxy.Addr
	}
	e.gw = gwtest.Start(t, gwtest.Options{
		Domain:    gwDomain,
		Secret:    gwSecret,
		Server:    server,
		Transport: tr,
		DBPath:    e.dbPath,
		Logger:    log,
		Allowed:   func(d string) bool { return d == serverDomain },
		Limits:    e.opts.limits,
	})
	e.stop = e.gw.Stop
}

// client logs an XMPP user in with a real client.
func (e *env) client(name, resource string) *xmpptest.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	j := jid.MustParse(name + "@" + serverDomain + "/" + resource)
	return xmpptest.Dial(e.t, ctx, e.xmpp.C2SAddr, j, name+"-pw")
}

// register registers c with the IRC transport under nick and completes the
// XEP-0100 subscription handshake; the user is then online for the
// transport.
func (e *env) register(c *xmpptest.Client, nick string, extra ...string) {
	e.t.Helper()
	c.SendRaw(e.t, `<presence/>`)
	fields := `<field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field><field var='nick'><value>` + nick + `</value></field>`
	for i := 0; i+1 < len(extra); i += 2 {
		fields += `<field var='` + extra[i] + `'><value>` + extra[i+1] + `</value></field>`
	}
	res := c.IQ(e.t, wait, `<iq type='set' to='`+gwDomain+`' id='reg'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>`+fields+`</x></query></iq>`)
	if res.Type != "result" {
		e.t.Fatalf("registration failed: %s", res)
	}
	c.Expect(e.t, wait, xmpptest.PresenceFrom(gwDomain, "subscribe"))
	c.SendRaw(e.t, `<presence to='`+gwDomain+`' type='subscribed'/>`)
	c.SendRaw(e.t, `<presence to='`+gwDomain+`' type='subscribe'/>`)
	c.Expect(e.t, wait, xmpptest.PresenceFrom(gwDomain, "subscribed"))
	c.Expect(e.t, wait, xmpptest.PresenceFrom(gwDomain, ""))
}

// ircUser connects a raw IRC client.
func (e *env) ircUser(nick string) *irctest.Client {
	e.t.Helper()
	return irctest.Dial(e.t, e.irc.Addr(), nick)
}

// roomJID is the MUC room of a channel on the test network.
func roomJID(channel string) string {
	return channel + "%" + network + "@" + gwDomain
}

// userJID is the JID of an IRC nick on the test network.
func userJID(nick string) string {
	return nick + "%" + network + "@" + gwDomain
}

// join joins a room from c as nick and waits for the self-presence.
func join(t *testing.T, c *xmpptest.Client, channel, nick string, password ...string) *xmpptest.Stanza {
	t.Helper()
	x := `<x xmlns='http://jabber.org/protocol/muc'/>`
	if len(password) > 0 {
		x = `<x xmlns='http://jabber.org/protocol/muc'><password>` + password[0] + `</password></x>`
	}
	c.SendRaw(t, `<presence to='`+roomJID(channel)+`/`+nick+`'>`+x+`</presence>`)
	return c.Expect(t, wait, selfPresence(channel))
}

// selfPresence matches the user's own presence in a room (status 110).
func selfPresence(channel string) func(*xmpptest.Stanza) bool {
	return func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "presence" && strings.HasPrefix(strings.ToLower(s.From), strings.ToLower(roomJID(channel))+"/") && hasStatus(s, 110)
	}
}

// occupant matches an occupant's presence of a type ("" available).
func occupant(channel, nick, typ string) func(*xmpptest.Stanza) bool {
	return xmpptest.PresenceFrom(roomJID(channel)+"/"+nick, typ)
}

func hasStatus(s *xmpptest.Stanza, code int) bool {
	return strings.Contains(s.Inner, fmt.Sprintf(`code="%d"`, code)) || strings.Contains(s.Inner, fmt.Sprintf(`code='%d'`, code))
}

func hasAttr(s *xmpptest.Stanza, name, value string) bool {
	return strings.Contains(s.Inner, name+`="`+value+`"`) || strings.Contains(s.Inner, name+`='`+value+`'`)
}

// groupchat matches a group-chat message from room/nick with that body
// (any body when body is empty).
func groupchat(channel, nick, body string) func(*xmpptest.Stanza) bool {
	from := roomJID(channel)
	if nick != "" {
		from += "/" + nick
	}
	return func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "message" && s.Type == "groupchat" && strings.EqualFold(s.From, from) &&
			bodyOf(s) != "" && (body == "" || bodyOf(s) == body)
	}
}

// bodyOf extracts the body text of a message.
func bodyOf(s *xmpptest.Stanza) string {
	return s.Text("", "body")
}

// bobAndAlice has IRC user bob create channel (as its operator), and XMPP
// user alice register and join it; bob has seen her join.
func (e *env) bobAndAlice(t *testing.T, channel string) (*irctest.Client, *xmpptest.Client) {
	t.Helper()
	bob := e.ircUser("bob")
	bob.Join(t, channel)
	alice := e.client("alice", "phone")
	e.register(alice, "alice")
	join(t, alice, channel, "alice")
	bob.Expect(t, wait, irctest.From("alice", irctest.Command("JOIN", channel)))
	return bob, alice
}
