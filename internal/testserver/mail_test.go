package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func TestMail(t *testing.T) {
	start := time.Now()
	m := StartMail(t, MailConfig{Users: []MailUser{{"alice", "alice-pw"}, {"bob", "bob-pw"}}})
	t.Logf("StartMail took %v", time.Since(start))
	if m.Domain() != "mail.test" {
		t.Fatalf("domain %q", m.Domain())
	}

	t.Run("SMTPToIMAP", func(t *testing.T) {
		c := dialSMTP(t, m, "alice@mail.test", "alice-pw")
		sendMail(t, m, c, "alice@mail.test", "bob@mail.test", "Subject: hello bob\r\nFrom: alice@mail.test\r\nTo: bob@mail.test\r\n\r\nhi\r\n")
		msgs := waitMessages(t, m, "bob", "bob-pw", 1)
		if got := subject(t, msgs[0]); got != "hello bob" {
			t.Fatalf("subject %q", got)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		c, err := smtp.Dial(m.SMTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Auth(sasl.NewPlainClient("", "alice", "wrong"))
		var smtpErr *smtp.SMTPError
		if !errors.As(err, &smtpErr) || smtpErr.Code != 535 {
			t.Fatalf("AUTH with a wrong password: %v, want 535", err)
		}
	})

	t.Run("UnknownRecipientAndAddUser", func(t *testing.T) {
		c := dialSMTP(t, m, "alice", "alice-pw")
		if err := c.Mail("alice@mail.test", nil); err != nil {
			t.Fatal(err)
		}
		err := c.Rcpt("carol@mail.test", nil)
		var smtpErr *smtp.SMTPError
		if !errors.As(err, &smtpErr) || smtpErr.Code != 550 {
			t.Fatalf("RCPT to an unknown user: %v, want 550", err)
		}
		if err := c.Reset(); err != nil {
			t.Fatal(err)
		}
		m.AddUser(t, "carol", "carol-pw")
		sendMail(t, m, c, "alice@mail.test", "carol@mail.test", "Subject: welcome\r\n\r\nhi carol\r\n")
		waitMessages(t, m, "carol@mail.test", "carol-pw", 1)
		m.AddUser(t, "carol", "new-pw")
		if _, err := m.messages("carol", "carol-pw"); err == nil {
			t.Fatal("old password still accepted after AddUser changed it")
		}
		m.Messages(t, "carol", "new-pw")
	})

	t.Run("Relay", func(t *testing.T) {
		c, err := smtp.Dial(m.SMTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Mail("someone@example.org", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("x@example.org", nil); err == nil {
			t.Fatal("unauthenticated relay accepted")
		}
	})

	t.Run("Deliver", func(t *testing.T) {
		start := time.Now()
		for i := range 50 {
			m.Deliver(t, "alice", fmt.Appendf(nil, "Subject: batch %d\r\nFrom: x@example.org\r\n\r\nbody %d\r\n", i, i))
		}
		t.Logf("50 LMTP deliveries took %v", time.Since(start))
		msgs := m.Messages(t, "alice@mail.test", "alice-pw")
		if len(msgs) != 50 {
			t.Fatalf("%d messages, want 50", len(msgs))
		}
		for i, msg := range msgs {
			if got, want := subject(t, msg), fmt.Sprintf("batch %d", i); got != want {
				t.Fatalf("message %d: subject %q, want %q", i, got, want)
			}
		}
	})

	t.Run("Kick", func(t *testing.T) {
		c, err := imapclient.DialInsecure(m.IMAPAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !c.Caps().Has(imap.CapIdle) {
			t.Errorf("no IDLE in %v", c.Caps())
		}
		if err := c.Authenticate(sasl.NewPlainClient("", "bob@mail.test", "bob-pw")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatal(err)
		}
		m.Kick(t, "bob@mail.test")
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
			t.Fatalf("connection still open after Kick\n%s", m.Log())
		}
		m.Kick(t, "alice")
	})

	t.Run("RestartIMAP", func(t *testing.T) {
		m.RestartIMAP(t)
		if n := len(m.Messages(t, "alice", "alice-pw")); n != 50 {
			t.Fatalf("%d messages after restart, want 50", n)
		}
		c := dialSMTP(t, m, "bob", "bob-pw")
		sendMail(t, m, c, "bob@mail.test", "alice@mail.test", "Subject: after restart\r\n\r\nx\r\n")
		msgs := waitMessages(t, m, "alice", "alice-pw", 51)
		if got := subject(t, msgs[50]); got != "after restart" {
			t.Fatalf("subject %q", got)
		}
	})

	m.Stop()
	m.Stop()
	for _, addr := range []string{m.IMAPAddr(), m.SMTPAddr()} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections after Stop", addr)
		}
	}
}

func dialSMTP(t *testing.T, m *Mail, user, password string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(m.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
		t.Fatalf("AUTH PLAIN as %s: %v\n%s", user, err, m.Log())
	}
	return c
}

func sendMail(t *testing.T, m *Mail, c *smtp.Client, from, to, raw string) {
	t.Helper()
	if err := c.SendMail(from, []string{to}, bytes.NewReader([]byte(raw))); err != nil {
		t.Fatalf("send %s -> %s: %v\n%s", from, to, err, m.Log())
	}
}

// waitMessages polls an INBOX until it holds n messages (at most 10 s).
func waitMessages(t *testing.T, m *Mail, user, password string, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs := m.Messages(t, user, password)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d messages after 10 s, want %d\n%s", user, len(msgs), n, m.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func subject(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	return msg.Header.Get("Subject")
}
