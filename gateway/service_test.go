package gateway_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/registry"
)

func TestDomainQueries(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("alice")

	info := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if info.Type != "result" {
		t.Fatalf("disco#info: %s", info)
	}
	for _, want := range []string{
		`category="gateway"`, `type="xmpp"`,
		`var="jabber:iq:register"`, `var="jabber:iq:gateway"`, `var="urn:xmpp:ping"`,
		`var="jabber:iq:version"`, `var="http://jabber.org/protocol/disco#items"`,
	} {
		if !strings.Contains(info.Inner, want) {
			t.Errorf("disco#info lacks %s: %s", want, info.Inner)
		}
	}

	items := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='d2'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`)
	if items.Type != "result" || !items.Has("http://jabber.org/protocol/disco#items", "query") {
		t.Errorf("disco#items: %s", items)
	}
	ping := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if ping.Type != "result" {
		t.Errorf("ping: %s", ping)
	}
	ver := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='v1'><query xmlns='jabber:iq:version'/></iq>`)
	if ver.Type != "result" || !strings.Contains(ver.Inner, "<name>Passerelle</name>") {
		t.Errorf("version: %s", ver)
	}
	unknown := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='u1'><query xmlns='urn:example:nothing'/></iq>`)
	if got := unknown.ErrorCondition(); got != "service-unavailable" {
		t.Errorf("unknown iq: condition %q, want service-unavailable: %s", got, unknown)
	}
}

func TestGatewayAddressTranslation(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("alice")

	prompt := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='g1'><query xmlns='jabber:iq:gateway'/></iq>`)
	if prompt.Type != "result" || !strings.Contains(prompt.Inner, "<prompt>Test network address</prompt>") {
		t.Fatalf("gateway prompt: %s", prompt)
	}
	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='g2'><query xmlns='jabber:iq:gateway'><prompt>Alice@Test.Example</prompt></query></iq>`)
	if want := "<jid>alice%test.example@" + gwDomain + "</jid>"; res.Type != "result" || !strings.Contains(res.Inner, want) {
		t.Fatalf("gateway translation: want %s in %s", want, res)
	}
	bad := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='g3'><query xmlns='jabber:iq:gateway'><prompt>not an address</prompt></query></iq>`)
	if got := bad.ErrorCondition(); got != "jid-malformed" {
		t.Errorf("bad address: condition %q, want jid-malformed: %s", got, bad)
	}
}

func TestRegistration(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("alice")
	ctx := t.Context()

	form := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='r1'><query xmlns='jabber:iq:register'/></iq>`)
	if form.Type != "result" {
		t.Fatalf("registration form: %s", form)
	}
	for _, want := range []string{`jabber:x:data`, `var="username"`, `type="text-private"`, `<required></required>`, `<username></username>`, `<password></password>`} {
		if !strings.Contains(form.Inner, want) {
			t.Errorf("registration form lacks %s: %s", want, form.Inner)
		}
	}
	if strings.Contains(form.Inner, "<registered") {
		t.Errorf("a new user is shown as registered: %s", form.Inner)
	}

	// Missing required field: refused, nothing stored.
	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='r2'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy"})+`</query></iq>`)
	if got := res.ErrorCondition(); got != "not-acceptable" || !strings.Contains(res.Inner, "Password is required") {
		t.Errorf("missing password: condition %q: %s", got, res)
	}
	// Wrong credentials: refused by the network, nothing stored.
	res = c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='r3'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy", "password": "wrong"})+`</query></iq>`)
	if got := res.ErrorCondition(); got != "not-authorized" {
		t.Errorf("wrong password: condition %q, want not-authorized: %s", got, res)
	}
	if _, err := e.store.Registration(ctx, "alice@"+serverDomain, gwDomain); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a refused registration was stored (err %v)", err)
	}

	e.register(c, "alice-legacy", "legacy-pw")
	reg, err := e.store.Registration(ctx, "alice@"+serverDomain, gwDomain)
	if err != nil {
		t.Fatalf("registration not stored: %v", err)
	}
	if reg.Fields["username"] != "alice-legacy" || reg.Secrets["password"] != "legacy-pw" || reg.Fields["password"] != "" {
		t.Errorf("stored registration: fields %v, secret stored: %v", reg.Fields, reg.Secrets["password"] == "legacy-pw")
	}

	// Registered: the form says so and shows values, never the password.
	form = c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='r4'><query xmlns='jabber:iq:register'/></iq>`)
	if !strings.Contains(form.Inner, "<registered") || !strings.Contains(form.Inner, "alice-legacy") || strings.Contains(form.Inner, "legacy-pw") {
		t.Errorf("form of a registered user: %s", form.Inner)
	}

	// Re-registering updates; an empty password keeps the stored one.
	res = c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='r5'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy", "greeting": "hello there"})+`</query></iq>`)
	if res.Type != "result" {
		t.Fatalf("re-registration: %s", res)
	}
	reg2, err := e.store.Registration(ctx, "alice@"+serverDomain, gwDomain)
	if err != nil || reg2.Fields["greeting"] != "hello there" || reg2.Secrets["password"] != "legacy-pw" || !reg2.Created.Equal(reg.Created) {
		t.Errorf("after re-registration: %+v, %v", reg2.Fields, err)
	}
	c.ExpectNone(t, 500*time.Millisecond, xmpptest.PresenceFrom(gwDomain, "subscribe"))
}

func TestLegacyXEP0077Fields(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client("bob")
	e.net.AddAccount("bob-legacy", "pw2")
	res := c.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='l1'><query xmlns='jabber:iq:register'>`+
		`<username>bob-legacy</username><password>pw2</password></query></iq>`)
	if res.Type != "result" {
		t.Fatalf("registration with XEP-0077 fields: %s", res)
	}
}

func TestForbiddenDomain(t *testing.T) {
	e := newEnv(t, envOptions{allowed: func(d string) bool { return d == "elsewhere.test" }})
	c := e.client("alice")
	res := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='f1'><query xmlns='jabber:iq:register'/></iq>`)
	if got := res.ErrorCondition(); got != "forbidden" {
		t.Errorf("register from a foreign domain: condition %q, want forbidden: %s", got, res)
	}
	c.SendRaw(t, `<message to='friend%test.example@`+gwDomain+`' id='m1' type='chat'><body>hi</body></message>`)
	m := c.Expect(t, wait, xmpptest.MessageFrom("friend%test.example@"+gwDomain))
	if got := m.ErrorCondition(); got != "forbidden" {
		t.Errorf("message from a foreign domain: condition %q, want forbidden: %s", got, m)
	}
	// Service discovery stays public.
	info := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='f2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if info.Type != "result" {
		t.Errorf("disco#info from a foreign domain: %s", info)
	}
}
