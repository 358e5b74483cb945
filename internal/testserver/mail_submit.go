package testserver

import (
	"bytes"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"passerelle.dev/passerelle/internal/tb"
)

// Submit hands a raw message to Postfix over SMTP, as a remote sender
// would (no authentication), for the INBOX of to (a name or an address of
// Domain). Postfix applies its default limits and rewriting, then delivers
// it to Dovecot; Submit returns once Postfix has queued it.
func (m *Mail) Submit(t tb.TB, from, to string, raw []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", m.SMTPAddr(), 5*time.Second)
	if err != nil {
		t.Fatalf("submit to %s: %v", to, err)
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.SendMail(from, []string{m.address(to)}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("submit %s -> %s over SMTP: %v\n%s", from, to, err, m.Log())
	}
	_ = c.Quit()
}
