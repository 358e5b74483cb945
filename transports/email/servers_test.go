package email_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/email"
)

// The tests in this file aim the gateway at loopback listeners that stand
// for hosts a user names, and check what reaches them.

// TestPasswordBoundToServers: a registered user who points the mailbox at
// another server without typing the password again is refused, through
// XEP-0077 and through the settings command, and the stored password never
// reaches the new server; the registration is kept as it was. With the
// password typed again, the new server is reached (so the refusals above
// mean something).
func TestPasswordBoundToServers(t *testing.T) {
	e := newEnv(t, allowLoopback)
	p := startProbe(t, "127.0.0.2", "imap")
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice := "alice@" + e.mail.Domain()
	before, err := e.gw.Store.Registration(context.Background(), c.JID().Bare().String(), gwDomain)
	if err != nil {
		t.Fatal(err)
	}

	res := submitRegistration(t, c, servers(alice, "", p.host(), p.port()))
	if res.Type != "error" || !strings.Contains(errorText(res), "password") {
		t.Errorf("new servers, empty password: %s", res)
	}
	// The same through the settings command (XEP-0050).
	res = c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='s1'><command xmlns='http://jabber.org/protocol/commands' node='settings' action='execute'/></iq>`)
	sid := regexp.MustCompile(`sessionid="([^"]+)"`).FindStringSubmatch(res.Inner)
	if res.Type != "result" || sid == nil {
		t.Fatalf("settings: %s", res)
	}
	var form strings.Builder
	form.WriteString(`<x xmlns='jabber:x:data' type='submit'>`)
	for k, v := range servers(alice, "", p.host(), p.port()) {
		form.WriteString(`<field var='` + k + `'><value>` + v + `</value></field>`)
	}
	form.WriteString(`<field var='password'/></x>`)
	res = c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='s2'><command xmlns='http://jabber.org/protocol/commands' node='settings' sessionid='`+sid[1]+`' action='complete'>`+form.String()+`</command></iq>`)
	if !strings.Contains(res.Inner, "password") || strings.Contains(res.Inner, "Settings saved") {
		t.Errorf("settings with new servers, empty password: %s", res)
	}
	if conns, logins := p.seen(); conns != 0 || len(logins) != 0 {
		t.Fatalf("the new server got %d connections and the logins %q", conns, logins)
	}
	after, err := e.gw.Store.Registration(context.Background(), c.JID().Bare().String(), gwDomain)
	if err != nil || after.Fields["imap_host"] != before.Fields["imap_host"] || after.Fields["imap_port"] != before.Fields["imap_port"] || after.Secrets["password"] != "alice-mail" {
		t.Errorf("the registration changed: %+v, %v", after.Fields, err)
	}

	// Typed again, the password goes to the new server, which refuses it.
	res = submitRegistration(t, c, servers(alice, "typed-again", p.host(), p.port()))
	if res.Type != "error" || res.ErrorCondition() != "not-authorized" {
		t.Errorf("new servers, password typed again: %s", res)
	}
	if _, logins := p.seen(); len(logins) != 1 || !strings.Contains(logins[0], "typed-again") {
		t.Errorf("the new server got the logins %q", logins)
	}
}

// TestCustomServersOffByDefault: with the default config, a server the
// user names is refused before any connection is made.
func TestCustomServersOffByDefault(t *testing.T) {
	e := newEnv(t)
	p := startProbe(t, "127.0.0.2", "imap")
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)
	res := submitRegistration(t, c, servers("alice@elsewhere.test", "x", p.host(), p.port()))
	if res.Type != "error" || !strings.Contains(errorText(res), "not allowed") {
		t.Errorf("custom server: %s", res)
	}
	if conns, _ := p.seen(); conns != 0 {
		t.Errorf("the custom server got %d connections", conns)
	}
	// A preset is still used.
	e.register(c, "alice", "alice-mail")
	// The settings as the form shows them (the preset's servers, named),
	// sent back with the password kept: the preset, not a custom server.
	v := servers("alice@"+e.mail.Domain(), "", "127.0.0.1", itoa(port(e.mail.IMAPAddr())))
	v["smtp_port"] = itoa(port(e.mail.SMTPAddr()))
	v["skip_automated"] = "true"
	if res := submitRegistration(t, c, v); res.Type != "result" {
		t.Errorf("the preset's servers named, password kept: %s", res)
	}
}

// TestCustomServersAddressPolicy: with custom servers allowed, a loopback
// server is refused unless the admin listed loopback; listed, it works.
func TestCustomServersAddressPolicy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow []string
	}{
		{"not listed", nil},
		{"listed", []string{"127.0.0.0/8", "::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *email.Config, m *testserver.Mail) {
				allowLoopback(c, m)
				c.AllowAddresses = tc.allow
			})
			p := startProbe(t, "127.0.0.2", "imap")
			c := e.client("alice")
			c.SendRaw(t, `<presence/>`)
			res := submitRegistration(t, c, servers("alice@elsewhere.test", "x", p.host(), p.port()))
			conns, _ := p.seen()
			if tc.allow == nil {
				if res.Type != "error" || !strings.Contains(errorText(res), "not allowed") || conns != 0 {
					t.Errorf("loopback not listed: %s, %d connections", res, conns)
				}
				return
			}
			if res.Type != "error" || res.ErrorCondition() != "not-authorized" || conns != 1 {
				t.Errorf("loopback listed, wrong password: %s, %d connections", res, conns)
			}
			// The real Dovecot and Postfix, named by the user ("localhost" is
			// not the preset's "127.0.0.1"): registered.
			v := servers("alice@elsewhere.test", "alice-mail", "localhost", itoa(port(e.mail.IMAPAddr())))
			v["smtp_port"] = itoa(port(e.mail.SMTPAddr()))
			if res := submitRegistration(t, c, v); res.Type != "result" {
				t.Errorf("custom servers, loopback listed: %s", res)
			}
		})
	}
}

// TestRegistrationRateLimit: beyond the default number of registration
// attempts in the window, the next is refused, says when to try again, and
// connects nowhere.
func TestRegistrationRateLimit(t *testing.T) {
	e := newEnv(t, allowLoopback)
	p := startProbe(t, "127.0.0.2", "imap")
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)
	const attempts = 5 // the default
	for i := 1; i <= attempts; i++ {
		res := submitRegistration(t, c, servers("alice@elsewhere.test", "guess-"+itoa(i), p.host(), p.port()))
		if res.Type != "error" || res.ErrorCondition() != "not-authorized" {
			t.Fatalf("attempt %d: %s", i, res)
		}
	}
	res := submitRegistration(t, c, servers("alice@elsewhere.test", "guess-6", p.host(), p.port()))
	if res.Type != "error" || res.ErrorCondition() != "resource-constraint" || !strings.Contains(errorText(res), "Try again in") {
		t.Errorf("attempt %d: %s", attempts+1, res)
	}
	if conns, logins := p.seen(); conns != attempts || len(logins) != attempts {
		t.Errorf("the server got %d connections and %d logins, want %d", conns, len(logins), attempts)
	}
}

// TestUnreachableTextsAlike: a refused port and a silent one read the same
// to the user, so the gateway cannot tell a user which ports are open.
func TestUnreachableTextsAlike(t *testing.T) {
	e := newEnv(t, allowLoopback)
	silent := startProbe(t, "127.0.0.2", "silent")
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)
	refused := submitRegistration(t, c, servers("alice@elsewhere.test", "x", "127.0.0.1", closedPort(t)))
	quiet := submitRegistration(t, c, servers("alice@elsewhere.test", "x", silent.host(), silent.port()))
	if refused.Type != "error" || quiet.Type != "error" {
		t.Fatalf("refused: %s\nsilent: %s", refused, quiet)
	}
	a, b := errorText(refused), errorText(quiet)
	// Each names the address the user gave; the rest must be the same.
	a = strings.ReplaceAll(a, "127.0.0.1", "HOST")
	b = strings.ReplaceAll(b, silent.host(), "HOST")
	a = regexp.MustCompile(`:\d+`).ReplaceAllString(a, ":PORT")
	b = regexp.MustCompile(`:\d+`).ReplaceAllString(b, ":PORT")
	if a != b || refused.ErrorCondition() != quiet.ErrorCondition() {
		t.Errorf("a refused port reads %q (%s), a silent one %q (%s)", a, refused.ErrorCondition(), b, quiet.ErrorCondition())
	}
	if conns, _ := silent.seen(); conns != 1 {
		t.Errorf("the silent server got %d connections", conns)
	}
}

// allowLoopback lets users name their own servers, on loopback too, and
// gives up on a silent server after 2 s.
func allowLoopback(c *email.Config, _ *testserver.Mail) {
	c.AllowCustomServers = true
	c.AllowAddresses = []string{"127.0.0.0/8", "::1"}
	c.ConnectTimeout = transports.Duration{Duration: 2 * time.Second}
}

// TestStoredCustomServersRechecked: the policy holds at every login, not
// only at registration: a user registered with custom servers is not
// logged in once the admin stops allowing them, or their address.
func TestStoredCustomServersRechecked(t *testing.T) {
	e := newEnv(t, allowLoopback)
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)
	v := servers("alice@elsewhere.test", "alice-mail", "localhost", itoa(port(e.mail.IMAPAddr())))
	v["smtp_port"] = itoa(port(e.mail.SMTPAddr()))
	if res := submitRegistration(t, c, v); res.Type != "result" {
		t.Fatalf("custom servers, loopback listed: %s", res)
	}
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribe"))
	c.SendRaw(t, `<presence to='`+gwDomain+`' type='subscribed'/>`)
	c.SendRaw(t, `<presence to='`+gwDomain+`' type='subscribe'/>`)
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribed"))
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, ""))
	for _, tc := range []struct {
		name, want string
		tune       func(*email.Config)
	}{
		{"custom servers no longer allowed", "custom mail servers are not allowed", func(c *email.Config) { c.AllowCustomServers = false }},
		{"loopback no longer listed", "address is not allowed", func(c *email.Config) { c.AllowAddresses = nil }},
	} {
		e.stop()
		allowLoopback(&e.cfg, e.mail)
		tc.tune(&e.cfg)
		e.start()
		p := c.Expect(t, wait, func(s *xmpptest.Stanza) bool {
			return s.XMLName.Local == "presence" && s.From == gwDomain && strings.Contains(s.Text("", "status"), "Login failed")
		})
		if !strings.Contains(p.Text("", "status"), tc.want) {
			t.Errorf("%s: %s", tc.name, p)
		}
	}
}

// TestTransportKeepsPasswordWithServers: the transport itself, asked to
// keep the stored password (left empty) for other servers, refuses before
// connecting anywhere, whatever the gateway in front of it checked.
func TestTransportKeepsPasswordWithServers(t *testing.T) {
	p := startProbe(t, "127.0.0.2", "imap")
	cfg := email.Config{AllowPlaintext: true}
	allowLoopback(&cfg, nil)
	tr, err := email.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	previous := servers("alice@elsewhere.test", "stored-pw", "127.0.0.1", "143")
	previous["password"] = "stored-pw"
	_, err = tr.Register(context.Background(), transports.RegisterRequest{
		User: "alice@example.test", Values: servers("alice@elsewhere.test", "", p.host(), p.port()), Previous: previous,
	})
	if transports.KindOf(err) != transports.BadRequest || !strings.Contains(err.Error(), "password again") {
		t.Errorf("got %v", err)
	}
	if conns, logins := p.seen(); conns != 0 {
		t.Errorf("the new server got %d connections, logins %q", conns, logins)
	}
}

// TestAllowAddressesChecked: a typo in allow_addresses stops the
// transport from starting.
func TestAllowAddressesChecked(t *testing.T) {
	_, err := email.New(email.Config{AllowCustomServers: true, AllowAddresses: []string{"10.0.0.0/8", "intranet"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "allow_addresses") {
		t.Errorf("got %v", err)
	}
}
