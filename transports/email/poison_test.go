package email_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports/email"
)

// fromGateway matches a chat message from the gateway itself.
func fromGateway(s *xmpptest.Stanza) bool {
	return s.XMLName.Local == "message" && s.Type == "chat" && s.From == gwDomain
}

// hostileMails are the mails of the issue, as a remote sender submits
// them to Postfix (under its default 10 MB limit).
func hostileMails(to string) []struct {
	name string
	raw  []byte
	// check looks at what the user got: the mail itself, or a notice.
	check func(t *testing.T, c *xmpptest.Client)
} {
	bob := "bob@elsewhere.example"
	type hm = struct {
		name  string
		raw   []byte
		check func(t *testing.T, c *xmpptest.Client)
	}
	expectMail := func(cond func(body, subject string) bool) func(t *testing.T, c *xmpptest.Client) {
		return func(t *testing.T, c *xmpptest.Client) {
			m := c.Expect(t, wait, chatFrom(bob))
			if body, subject := m.Text("", "body"), m.Text("", "subject"); !cond(body, subject) {
				t.Errorf("got subject %q (%d bytes), body of %d bytes: %.300q … %.300q", subject, len(subject), len(body), body, body[max(0, len(body)-300):])
			}
		}
	}
	head := "From: " + bob + "\r\nTo: " + to + "\r\nMIME-Version: 1.0\r\n"

	var att strings.Builder
	att.WriteString(head + "Subject: many attachments\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nsee the files\r\n")
	for i := range 4000 {
		fmt.Fprintf(&att, "--zz\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n filename=\"%04d-%s.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n", i, strings.Repeat("n", 181))
	}
	att.WriteString("--zz--\r\n")

	var nest strings.Builder
	nest.WriteString(head + "Subject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := range 1000 {
		fmt.Fprintf(&nest, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i+1)
	}
	nest.WriteString("--b1000\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n")
	for i := 1000; i >= 0; i-- {
		fmt.Fprintf(&nest, "--b%d--\r\n", i)
	}

	// A 1 MB subject, before the sender: Postfix keeps 100 KB of it.
	words := strings.Repeat("word ", 1<<20/5)
	bigHeader := "Subject: " + words + "\r\nX-Filler: " + strings.Repeat("f", 1<<20) + "\r\n" + head + "\r\nsmall body\r\n"

	var big strings.Builder
	big.WriteString(head + "Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	line := strings.Repeat("<&>\"", 18) + "\r\n"
	for big.Len() < 8<<20 {
		big.WriteString(line)
	}

	noAddr := "From: undisclosed-recipients:;\r\nTo: " + to + "\r\nSubject: who sent this\r\n\r\nbody\r\n"
	tooLong := "From: <" + strings.Repeat("a", 1100) + "@elsewhere.example>\r\nTo: " + to + "\r\nSubject: long sender\r\n\r\nbody\r\n"
	expectNotice := func(subject string) func(t *testing.T, c *xmpptest.Client) {
		return func(t *testing.T, c *xmpptest.Client) {
			m := c.Expect(t, wait, fromGateway)
			if body := m.Text("", "body"); !strings.Contains(body, "skipped (UID ") || !strings.Contains(body, subject) || !strings.Contains(body, "not a usable address") {
				t.Errorf("notice: %q", body)
			}
		}
	}
	return []hm{
		{"4000 attachments", []byte(att.String()), expectMail(func(body, _ string) bool {
			return strings.HasPrefix(body, "see the files\n\nAttachments:\n• 0000-nnn") && strings.HasSuffix(body, "… and 3,980 more") && len(body) < 8<<10
		})},
		{"1000 levels", []byte(nest.String()), expectMail(func(body, subject string) bool {
			return subject == "deep" && len(body) < 4<<10
		})},
		{"1 MB header", []byte(bigHeader), expectMail(func(body, subject string) bool {
			return strings.HasPrefix(subject, "word word") && strings.HasSuffix(subject, "…") && len(subject) <= 400 && body == "small body"
		})},
		{"8 MB body", []byte(big.String()), expectMail(func(body, _ string) bool {
			return strings.HasPrefix(body, line[:40]) && strings.Contains(body, "[… cut: the mail is longer, 8.0 MB in all]") && len(body) <= 33<<10
		})},
		{"no address", []byte(noAddr), expectNotice("who sent this")},
		{"sender too long for a JID", []byte(tooLong), expectNotice("long sender")},
	}
}

// TestHostileMail: each hostile mail of the issue, through the real
// Postfix and Dovecot, arrives bounded or is skipped with a notice; the
// ordinary mail after it arrives, and the component stays connected, at
// the XMPP server's default stanza limits.
func TestHostileMail(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	for i, hm := range hostileMails(alice) {
		t.Run(strings.ReplaceAll(hm.name, " ", "_"), func(t *testing.T) {
			e.mail.Submit(t, "bob@elsewhere.example", alice, hm.raw)
			hm.check(t, c)
			e.mail.Submit(t, carol, alice, rawMail(carol, alice, "ordinary", fmt.Sprintf("ordinary %d", i)))
			m := c.Expect(t, wait, chatFrom(carol))
			if body := m.Text("", "body"); body != fmt.Sprintf("ordinary %d", i) {
				t.Errorf("after %s: %q", hm.name, body)
			}
		})
	}
	if logs := e.logs.String(); strings.Contains(logs, "disconnected from the XMPP server") {
		t.Errorf("the component was disconnected:\n%s", logs)
	}
}

// TestMailBeforeFirstLogin: mail that arrives between the registration
// and the user's first login is delivered.
func TestMailBeforeFirstLogin(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	e.mail.Submit(t, carol, alice, rawMail(carol, alice, "old", "already there"))
	waitMessages(t, e, "alice", "alice-mail", 1)
	// Registered, but the gateway does not see the user's presence until
	// the user approves its subscription: no login yet.
	c.SendRaw(t, `<presence/>`)
	res := submitRegistration(t, c, map[string]string{"address": alice, "password": "alice-mail"})
	if res.Type != "result" {
		t.Fatalf("registration failed: %s", res)
	}
	c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribe"))
	e.mail.Submit(t, carol, alice, rawMail(carol, alice, "early", "sent before the first login"))
	waitMessages(t, e, "alice", "alice-mail", 2)
	// Now the user comes online for the gateway: the session starts.
	c.SendRaw(t, `<presence to='`+gwDomain+`' type='subscribed'/>`)
	c.SendRaw(t, `<presence to='`+gwDomain+`' type='subscribe'/>`)
	m := c.Expect(t, wait, chatFrom(carol))
	if body := m.Text("", "body"); body != "sent before the first login" {
		t.Errorf("first mail shown: %q", body)
	}
	c.ExpectNone(t, 1500*time.Millisecond, chatFrom(carol))
}

// TestPanicCostsOneMail: a panic while handling one mail skips that mail
// with a notice; the next arrives. A panic while sending one fails that
// message only.
func TestPanicCostsOneMail(t *testing.T) {
	email.SetMailHook(t, func(subject string) {
		if subject == "boom" {
			panic("test: a mail that breaks the gateway")
		}
	})
	email.SetSendHook(t, func(body string) {
		if body == "boom" {
			panic("test: a message that breaks the gateway")
		}
	})
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	e.mail.Submit(t, carol, alice, rawMail(carol, alice, "boom", "this one panics"))
	e.mail.Submit(t, carol, alice, rawMail(carol, alice, "fine", "this one is fine"))
	n := c.Expect(t, wait, fromGateway)
	if body := n.Text("", "body"); !strings.Contains(body, "“boom”") || !strings.Contains(body, "internal error") {
		t.Errorf("notice: %q", body)
	}
	m := c.Expect(t, wait, chatFrom(carol))
	if body := m.Text("", "body"); body != "this one is fine" {
		t.Errorf("after the panic: %q", body)
	}

	bob := "bob@" + e.mail.Domain()
	c.SendRaw(t, `<message to='`+contactJID(bob)+`' type='chat' id='p1'><body>boom</body></message>`)
	c.SendRaw(t, `<message to='`+contactJID(bob)+`' type='chat' id='p2'><body>after</body></message>`)
	s := c.Expect(t, wait, func(s *xmpptest.Stanza) bool { return s.XMLName.Local == "message" && s.Type == "error" })
	if s.ID != "p1" {
		t.Errorf("error on %s, want p1: %s", s.ID, s)
	}
	if msgs := waitMessages(t, e, "bob", "bob-mail", 1); !strings.Contains(string(msgs[0]), "after") {
		t.Errorf("bob got %q", msgs[0])
	}
}
