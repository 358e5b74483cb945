package email_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports/email"
)

// TestRegistration: a good password is accepted, a wrong one and a
// server that is not a preset are refused and nothing is stored.
func TestRegistration(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	c.SendRaw(t, `<presence/>`)
	res := submitRegistration(t, c, map[string]string{"address": "alice@" + e.mail.Domain(), "password": "wrong"})
	if res.Type != "error" || res.ErrorCondition() != "not-authorized" {
		t.Fatalf("wrong password: %s", res)
	}
	res = submitRegistration(t, c, map[string]string{"address": "alice@elsewhere.test", "password": "x", "imap_host": "127.0.0.1", "imap_port": "1", "imap_security": "plain", "smtp_host": "127.0.0.1", "smtp_port": "1", "smtp_security": "plain"})
	if res.Type != "error" || res.ErrorCondition() != "forbidden" {
		t.Fatalf("custom servers, not allowed by default: %s", res)
	}
	res = submitRegistration(t, c, map[string]string{"address": "alice@elsewhere.test", "password": "x"})
	if res.Type != "error" || !strings.Contains(res.Inner, "no preset") {
		t.Fatalf("no servers given: %s", res)
	}
	// Nothing was stored: the user is still unregistered.
	c.SendRaw(t, `<message to='`+contactJID("bob@"+e.mail.Domain())+`' type='chat' id='m0'><body>x</body></message>`)
	s := c.Expect(t, wait, func(s *xmpptest.Stanza) bool { return s.XMLName.Local == "message" && s.ID == "m0" })
	if s.ErrorCondition() != "registration-required" {
		t.Fatalf("after refused registrations: %s", s)
	}
	if n := len(e.mail.Messages(t, "bob", "bob-mail")); n != 0 {
		t.Errorf("bob got %d mails", n)
	}
	// The right password is accepted.
	e.register(c, "alice", "alice-mail")
	// Passwords never reach the logs, even at debug level.
	if logs := e.logs.String(); strings.Contains(logs, "alice-mail") || strings.Contains(logs, "password=") {
		t.Errorf("a password was logged:\n%s", logs)
	}
}

// TestMailOut: a chat message becomes a mail with the right headers, and a
// second one in the same XMPP thread is a reply to the first.
func TestMailOut(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	bob := "bob@" + e.mail.Domain()
	c.SendRaw(t, `<message to='`+contactJID(bob)+`' type='chat' id='o1'><subject>Lunch?</subject><thread>th-1</thread><body>Shall we meet at noon?&#10;Café du coin.</body></message>`)
	c.SendRaw(t, `<message to='`+contactJID(bob)+`' type='chat' id='o2'><thread>th-1</thread><body>Or at one.</body></message>`)
	c.SendRaw(t, `<message to='`+contactJID(bob)+`' type='chat' id='o3'><subject>hi&#13;&#10;Bcc: evil@example.net</subject><body>injection?</body></message>`)
	msgs := waitMessages(t, e, "bob", "bob-mail", 3)
	// Postfix may deliver them in any order: find each by its text.
	byText := func(text string) []byte {
		for _, m := range msgs {
			if strings.Contains(string(m), text) {
				return m
			}
		}
		t.Fatalf("no mail with %q", text)
		return nil
	}
	msgs = [][]byte{byText("noon"), byText("Or at one."), byText("injection?")}

	first := readMail(t, msgs[0])
	if got, _ := first.Header.Subject(); got != "Lunch?" {
		t.Errorf("subject = %q", got)
	}
	if from, _ := first.Header.AddressList("From"); len(from) != 1 || from[0].Address != "alice@"+e.mail.Domain() {
		t.Errorf("From = %v", from)
	}
	if to, _ := first.Header.AddressList("To"); len(to) != 1 || to[0].Address != bob {
		t.Errorf("To = %v", to)
	}
	if ct := first.Header.Get("Content-Type"); !strings.Contains(ct, "text/plain") || !strings.Contains(strings.ToLower(ct), "utf-8") {
		t.Errorf("Content-Type = %q", ct)
	}
	if body := mailBody(t, msgs[0]); body != "Shall we meet at noon?\nCafé du coin." {
		t.Errorf("body = %q", body)
	}
	id1, _ := first.Header.MessageID()
	second := readMail(t, msgs[1])
	irt, _ := second.Header.MsgIDList("In-Reply-To")
	refs, _ := second.Header.MsgIDList("References")
	if id1 == "" || len(irt) != 1 || irt[0] != id1 || len(refs) == 0 || refs[0] != id1 {
		t.Errorf("the reply is not threaded: Message-ID %q, In-Reply-To %v, References %v", id1, irt, refs)
	}
	if s, _ := second.Header.Subject(); s != "Re: Lunch?" {
		t.Errorf("reply subject = %q", s)
	}
	third := readMail(t, msgs[2])
	if third.Header.Get("Bcc") != "" || strings.Contains(string(msgs[2]), "\nBcc:") {
		t.Errorf("a header was injected:\n%s", msgs[2])
	}
	if s, _ := third.Header.Subject(); s != "hi Bcc: evil@example.net" {
		t.Errorf("subject = %q", s)
	}
}

// TestRejectedRecipient: the SMTP server's refusal comes back as an error
// on that message.
func TestRejectedRecipient(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	nobody := "nobody@" + e.mail.Domain()
	c.SendRaw(t, `<message to='`+contactJID(nobody)+`' type='chat' id='r1'><body>anyone?</body></message>`)
	s := c.Expect(t, wait, func(s *xmpptest.Stanza) bool {
		return s.XMLName.Local == "message" && s.Type == "error" && s.ID == "r1"
	})
	if s.ErrorCondition() != "item-not-found" || !strings.Contains(s.Inner, nobody) {
		t.Errorf("rejected recipient: %s", s)
	}
}

// TestMailIn: new mail arrives as chat with subject and thread; HTML-only
// and Latin-1 mails are readable; mailing lists are filtered out.
func TestMailIn(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice := "alice@" + e.mail.Domain()

	e.mail.Deliver(t, alice, rawMail("Carol <Carol@Elsewhere.example>", alice, "Hello there", "First line\nSecond line"))
	m := c.Expect(t, wait, chatFrom("carol@elsewhere.example"))
	if m.Text("", "subject") != "Hello there" || m.Text("", "body") != "First line\nSecond line" || m.Text("", "thread") == "" {
		t.Errorf("plain mail: %s", m)
	}

	e.mail.Deliver(t, alice, rawMail("carol@elsewhere.example", alice, "Digest", "list mail", "List-Id: <news.elsewhere.example>"))
	e.mail.Deliver(t, alice, []byte("From: dave@elsewhere.example\r\nTo: "+alice+"\r\nSubject: =?iso-8859-1?q?R=E9sum=E9?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCr=E8me br=FBl=E9e\r\n"))
	m = c.Expect(t, wait, chatFrom("dave@elsewhere.example"))
	if m.Text("", "subject") != "Résumé" || m.Text("", "body") != "Crème brûlée" {
		t.Errorf("Latin-1 mail: %s", m)
	}
	c.ExpectNone(t, 0, func(s *xmpptest.Stanza) bool { return strings.Contains(s.Inner, "list mail") })

	e.mail.Deliver(t, alice, []byte("From: erin@elsewhere.example\r\nTo: "+alice+"\r\nSubject: News\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><h1>Big</h1><p>news &amp; more</p></body></html>\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=pic.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n"))
	m = c.Expect(t, wait, chatFrom("erin@elsewhere.example"))
	body := m.Text("", "body")
	if !strings.Contains(body, "Big") || !strings.Contains(body, "news & more") || strings.Contains(body, "<p>") || !strings.Contains(body, "pic.png (8 bytes)") {
		t.Errorf("HTML mail with attachment: %q", body)
	}
}

// TestReplyRoundTrip: a mail reply to a chat message comes back in the
// chat's XMPP thread, and the answer to that is threaded again.
func TestReplyRoundTrip(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, bob := "alice@"+e.mail.Domain(), "bob@"+e.mail.Domain()
	c.SendRaw(t, `<message to='`+contactJID(bob)+`' type='chat' id='q1'><subject>Question</subject><thread>conv-7</thread><body>Are you coming?</body></message>`)
	sent := readMail(t, waitMessages(t, e, "bob", "bob-mail", 1)[0])
	id, _ := sent.Header.MessageID()

	e.mail.Deliver(t, alice, rawMail(bob, alice, "Re: Question", "Yes!", "In-Reply-To: <"+id+">", "References: <"+id+">"))
	m := c.Expect(t, wait, chatFrom(bob))
	if m.Text("", "thread") != "conv-7" || m.Text("", "body") != "Yes!" {
		t.Fatalf("the reply is not in the chat's thread: %s", m)
	}
	c.SendRaw(t, `<message to='`+contactJID(bob)+`' type='chat' id='q2'><thread>conv-7</thread><body>Great.</body></message>`)
	msgs := waitMessages(t, e, "bob", "bob-mail", 2)
	last := readMail(t, msgs[1])
	refs, _ := last.Header.MsgIDList("References")
	if len(refs) < 2 || refs[0] != id {
		t.Errorf("the answer does not reference the conversation: %v", refs)
	}
}

// waitMessages waits until user's INBOX holds n mails and returns them.
func waitMessages(t testing.TB, e *env, user, password string, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		msgs := e.mail.Messages(t, user, password)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d mails, want %d\n%s", user, len(msgs), n, e.mail.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readMail(t testing.TB, raw []byte) *mail.Reader {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("unreadable mail: %v\n%s", err, raw)
	}
	return r
}

func mailBody(t testing.TB, raw []byte) string {
	t.Helper()
	r := readMail(t, raw)
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(p.Body)
	return strings.TrimRight(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n")
}

// TestWhileOffline: with while_offline, mail that arrives while the user is
// offline waits in the XMPP server's offline storage.
func TestWhileOffline(t *testing.T) {
	e := newEnv(t, func(c *email.Config, _ *testserver.Mail) { c.WhileOffline = true })
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	c.Close()
	alice := "alice@" + e.mail.Domain()
	e.mail.Deliver(t, alice, rawMail("carol@elsewhere.example", alice, "While you were out", "Call me back."))
	time.Sleep(1500 * time.Millisecond) // Dovecot tells IDLE clients after 0.5 s
	// A gateway restart while the user is away logs them in again too.
	e.stop()
	e.start()
	e.mail.Deliver(t, alice, rawMail("carol@elsewhere.example", alice, "Again", "Still there?"))
	time.Sleep(1500 * time.Millisecond)

	c = e.client("alice")
	c.SendRaw(t, `<presence/>`)
	for _, want := range []string{"Call me back.", "Still there?"} {
		m := c.Expect(t, wait, chatFrom("carol@elsewhere.example"))
		if m.Text("", "body") != want {
			t.Errorf("offline message = %q, want %q", m.Text("", "body"), want)
		}
		// Stored by the XMPP server while the user was away, not fetched
		// at their return.
		if !m.Has("urn:xmpp:delay", "delay") {
			t.Errorf("not from offline storage: %s", m)
		}
	}
}

// TestTLS registers and exchanges mail over implicit TLS and over STARTTLS
// with both servers, and refuses servers whose certificate cannot be
// verified.
func TestTLS(t *testing.T) {
	for _, c := range []struct {
		name     string
		imapSec  string
		smtpSec  string
		implicit bool
		trust    bool
	}{
		{"implicit TLS", "tls", "tls", true, true},
		{"STARTTLS", "starttls", "starttls", false, true},
		{"unverified", "tls", "tls", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *email.Config, m *testserver.Mail) {
				imapAddr, smtpAddr := m.IMAPAddr(), m.SMTPAddr()
				if c.implicit {
					imapAddr, smtpAddr = m.IMAPSAddr(), m.SMTPSAddr()
				}
				cfg.AllowPlaintext = false
				if c.trust {
					cfg.CAFile = m.CAFile()
				}
				cfg.Domains = map[string]email.Servers{m.Domain(): {
					IMAPHost: "127.0.0.1", IMAPPort: port(imapAddr), IMAPSecurity: c.imapSec,
					SMTPHost: "127.0.0.1", SMTPPort: port(smtpAddr), SMTPSecurity: c.smtpSec,
				}}
			})
			cl := e.client("alice")
			if !c.trust {
				cl.SendRaw(t, `<presence/>`)
				res := submitRegistration(t, cl, map[string]string{"address": "alice@" + e.mail.Domain(), "password": "alice-mail"})
				if res.Type != "error" || !strings.Contains(res.Inner, "certificate") {
					t.Fatalf("a server with an unverifiable certificate: %s", res)
				}
				return
			}
			e.register(cl, "alice", "alice-mail")
			alice, bob := "alice@"+e.mail.Domain(), "bob@"+e.mail.Domain()
			cl.SendRaw(t, `<message to='`+contactJID(bob)+`' type='chat' id='t1'><body>over TLS</body></message>`)
			if body := mailBody(t, waitMessages(t, e, "bob", "bob-mail", 1)[0]); body != "over TLS" {
				t.Errorf("mail body = %q", body)
			}
			e.mail.Deliver(t, alice, rawMail(bob, alice, "back", "and back"))
			if m := cl.Expect(t, wait, chatFrom(bob)); m.Text("", "body") != "and back" {
				t.Errorf("incoming over TLS: %s", m)
			}
		})
	}
}

// TestContactPresence: email contacts in the roster are available while
// the mailbox is connected, and go offline with it.
func TestContactPresence(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	bob := contactJID("bob@" + e.mail.Domain())
	c.SendRaw(t, `<presence to='`+bob+`' type='subscribe'/>`)
	c.Expect(t, wait, xmpptest.PresenceFrom(bob, "subscribed"))
	c.Expect(t, wait, xmpptest.PresenceFrom(bob, ""))
	// A restart logs the user in again with the contact in the roster.
	e.stop()
	c.Expect(t, wait, xmpptest.PresenceFrom(bob, "unavailable"))
	e.start()
	c.Expect(t, wait, xmpptest.PresenceFrom(bob, ""))
}
