package email_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/gwtest"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/address"
	"passerelle.dev/passerelle/transports/email"
)

const (
	serverDomain = "example.test"
	gwDomain     = "mail.example.test"
	gwSecret     = "mail-secret"
	wait         = 15 * time.Second
)

// env is a real XMPP server, a real Dovecot and Postfix, and a gateway with the
// email transport between them.
type env struct {
	t      testing.TB
	xmpp   *testserver.XMPP
	mail   *testserver.Mail
	proxy  *testserver.Proxy // if set before start, between the gateway and Prosody
	dbPath string
	gw     *gwtest.Gateway
	stop   func()
	logs   *testserver.SyncBuffer
	cfg    email.Config
}

func newEnv(t testing.TB, tune ...func(*email.Config, *testserver.Mail)) *env {
	t.Helper()
	e := &env{t: t, logs: &testserver.SyncBuffer{}}
	e.mail = testserver.StartMail(t, testserver.MailConfig{Users: []testserver.MailUser{
		{Name: "alice", Password: "alice-mail"},
		{Name: "bob", Password: "bob-mail"},
	}})
	e.xmpp = testserver.StartXMPP(t, testserver.XMPPConfig{
		Domain:     serverDomain,
		Components: []testserver.Component{{Domain: gwDomain, Secret: gwSecret}},
		Users:      []testserver.User{{Name: "alice", Password: "alice-pw"}},
	})
	e.dbPath = filepath.Join(t.TempDir(), "passerelle.db")
	e.cfg = email.Config{
		AllowPlaintext:   true,
		SkipMailingLists: true,
		RetryWait:        transports.Duration{Duration: 100 * time.Millisecond},
		ReconnectMin:     transports.Duration{Duration: 100 * time.Millisecond},
		ReconnectMax:     transports.Duration{Duration: time.Second},
		Domains: map[string]email.Servers{e.mail.Domain(): {
			IMAPHost: "127.0.0.1", IMAPPort: port(e.mail.IMAPAddr()), IMAPSecurity: "plain",
			SMTPHost: "127.0.0.1", SMTPPort: port(e.mail.SMTPAddr()), SMTPSecurity: "plain",
		}},
	}
	for _, f := range tune {
		f(&e.cfg, e.mail)
	}
	t.Cleanup(func() {
		if d := os.Getenv("PASSERELLE_DEBUG_DIR"); d != "" && t.Failed() {
			name := e.xmpp.Kind + ".log" // prosody.log or ejabberd.log
			raw, _ := os.ReadFile(filepath.Join(e.xmpp.RunDir, name))
			_ = os.WriteFile(filepath.Join(d, name), raw, 0o644)
			_ = os.WriteFile(filepath.Join(d, "gateway.log"), []byte(e.logs.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s\nmail log:\n%s\n%s log:\n%s", gwtest.Tail(e.logs.String(), 5000), e.mail.Log(), e.xmpp.Kind, gwtest.Tail(e.xmpp.Log(), 5000))
		}
	})
	e.start()
	return e
}

func port(addr string) int {
	var p int
	_, _ = fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &p)
	return p
}

// start runs a gateway until stop or the end of the test.
func (e *env) start() {
	t := e.t
	t.Helper()
	log := gwtest.Logger(e.logs)
	tr, err := email.New(e.cfg, log)
	if err != nil {
		t.Fatalf("email.New: %v", err)
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
	})
	e.stop = e.gw.Stop
}

func (e *env) client(name string) *xmpptest.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return xmpptest.Dial(e.t, ctx, e.xmpp.C2SAddr, jid.MustParse(name+"@"+serverDomain), name+"-pw")
}

// submitRegistration sends the registration form and returns the answer.
func submitRegistration(t testing.TB, c *xmpptest.Client, values map[string]string) *xmpptest.Stanza {
	t.Helper()
	var b strings.Builder
	b.WriteString(`<iq type='set' to='` + gwDomain + `' id='reg'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field>`)
	for k, v := range values {
		b.WriteString(`<field var='` + k + `'><value>` + v + `</value></field>`)
	}
	b.WriteString(`</x></query></iq>`)
	return c.IQ(t, wait, b.String())
}

// register registers c with its mailbox and waits until the transport
// shows the mailbox as connected.
func (e *env) register(c *xmpptest.Client, mailbox, password string) {
	e.t.Helper()
	c.SendRaw(e.t, `<presence/>`)
	res := submitRegistration(e.t, c, map[string]string{"address": mailbox + "@" + e.mail.Domain(), "password": password})
	if res.Type != "result" {
		e.t.Fatalf("registration failed: %s", res)
	}
	c.Expect(e.t, wait, xmpptest.PresenceFrom(gwDomain, "subscribe"))
	c.SendRaw(e.t, `<presence to='`+gwDomain+`' type='subscribed'/>`)
	c.SendRaw(e.t, `<presence to='`+gwDomain+`' type='subscribe'/>`)
	c.Expect(e.t, wait, xmpptest.PresenceFrom(gwDomain, "subscribed"))
	c.Expect(e.t, wait, xmpptest.PresenceFrom(gwDomain, ""))
}

// contactJID is the JID of a mail address on the gateway.
func contactJID(addr string) string {
	local, err := address.Encode(addr)
	if err != nil {
		panic(err)
	}
	return local + "@" + gwDomain
}

// chatFrom matches a chat message from a mail address.
func chatFrom(addr string) func(*xmpptest.Stanza) bool {
	return func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "message" && s.Type == "chat" && strings.EqualFold(s.From, contactJID(addr))
	}
}

// rawMail builds a simple RFC 5322 mail.
func rawMail(from, to, subject, body string, headers ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d@sender.test>\r\n", from, to, subject, time.Now().Format(time.RFC1123Z), time.Now().UnixNano())
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + body + "\r\n")
	return []byte(b.String())
}
