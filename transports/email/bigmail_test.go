package email_test

import (
	"fmt"
	"strings"
	"testing"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// TestMailWithThousandsOfAttachments delivers the mail that once took the
// transport down for everyone: 4,000 attachments with 190-byte names, 1.6
// MB, well under Postfix's default 10 MB. Its attachment list made a
// stanza over Prosody's 512 KiB component limit; Prosody closed the
// stream, and the gateway wrote the same stanza after every reconnection.
// Now the user gets the start of it, the component stays connected and
// the next mail arrives.
func TestMailWithThousandsOfAttachments(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"

	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: Many attachments\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n", carol, alice)
	b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n")
	for i := range 4000 {
		name := fmt.Sprintf("%04d-%s.txt", i, strings.Repeat("n", 181))
		fmt.Fprintf(&b, "--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n", name, strings.Repeat("QUFB", 22))
	}
	b.WriteString("--b--\r\n")
	if b.Len() < 1_500_000 {
		t.Fatalf("the mail is only %d bytes", b.Len())
	}
	e.mail.Deliver(t, alice, []byte(b.String()))
	e.mail.Deliver(t, alice, rawMail(carol, alice, "After", "the next mail"))

	m := c.Expect(t, wait, chatFrom(carol))
	if body := m.Text("", "body"); len(m.Inner) > gateway.DefaultMaxStanzaBytes || !strings.HasPrefix(body, "See the files.") || !strings.Contains(body, "0000-nnn") {
		t.Errorf("big mail: %d bytes: %.300s…", len(m.Inner), m.Inner)
	}
	c.Expect(t, wait, xmpptest.And(chatFrom(carol), func(s *xmpptest.Stanza) bool { return s.Text("", "body") == "the next mail" }))
	if n := strings.Count(e.logs.String(), `msg="connected to the XMPP server"`); n != 1 {
		t.Errorf("the gateway connected %d times", n)
	}
}
