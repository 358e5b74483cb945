package gateway_test

import (
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestMixedCaseAddressesKeepTheStream: a user may write to the gateway's
// domain and to contacts in any letter case. ejabberd hands the component
// the address as the client wrote it (GW.example.test, Friend%...), Prosody
// a normalised one; Prosody closes the whole component stream (invalid-from)
// when a stanza comes from a domain that is not byte for byte the
// component's, ejabberd compares case-folded. The gateway decodes and
// answers from the normalised address, so on both the contact is found and
// the one connection survives.
func TestMixedCaseAddressesKeepTheStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()
	c.Expect(t, wait, xmpptest.PresenceFrom(friend, ""))
	upper := strings.ToUpper(gwDomain[:3]) + gwDomain[3:] // GW.example.test

	res := c.IQ(t, wait, `<iq type='get' to='`+upper+`' id='i1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if res.Type != "result" || !strings.EqualFold(res.From, gwDomain) {
		t.Errorf("disco#info of %s: %s", upper, res)
	}
	c.SendRaw(t, `<message to='Friend%test.example@`+upper+`/Phone' id='m1' type='chat'><body>hi</body></message>`)
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "echo: hi" {
		t.Errorf("echo: %s", m)
	}
	res = c.IQ(t, wait, `<iq type='get' to='nobody%test.example@`+upper+`' id='i2'><query xmlns='jabber:iq:version'/></iq>`)
	if res.Type != "result" && res.Type != "error" {
		t.Errorf("iq to a contact: %s", res)
	}
	// Anything that broke the stream shows as a second connection.
	time.Sleep(300 * time.Millisecond)
	if n := e.proxy.Accepted(); n != 1 || !e.gw.Connected() {
		t.Errorf("%d component connections (connected: %v), want the first one kept\n%s", n, e.gw.Connected(), e.server.Log())
	}
}

// TestStoppedGatewayBounces: while the gateway is not connected, the server
// answers for it with an error, so a user's message does not vanish. The
// condition is the server's: Prosody 0.12 says remote-server-timeout
// ("Component unavailable", type wait), ejabberd forbidden ("Access denied
// by service policy", type auth). RFC 6120 (10.5.1) lets a server answer a
// stanza for a domain it serves with an error without naming one, so each
// server is held to its own.
func TestStoppedGatewayBounces(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.aliceOnline()
	e.stop()
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "unavailable"))
	want := map[string]string{testserver.KindProsody: "remote-server-timeout", testserver.KindEjabberd: "forbidden"}[e.server.Kind]

	c.SendRaw(t, `<message to='`+friend+`' id='m1' type='chat'><body>anyone?</body></message>`)
	if m := c.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Type != "error" || m.ErrorCondition() != want {
		t.Errorf("message while the gateway is down: got %s, want %s", m, want)
	}
	res := c.IQ(t, wait, `<iq type='get' to='`+gwDomain+`' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if res.Type != "error" || res.ErrorCondition() != want {
		t.Errorf("ping while the gateway is down: got %s, want %s", res, want)
	}
}
