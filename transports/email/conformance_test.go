package email_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/email"
	"passerelle.dev/passerelle/transports/transporttest"
)

var (
	_ transports.Transport      = (*email.Transport)(nil)
	_ transports.Session        = (*email.Session)(nil)
	_ transports.ContactWatcher = (*email.Session)(nil)
)

// TestConformance runs the transport contract's suite against a real
// Postfix and Dovecot.
func TestConformance(t *testing.T) {
	mail := testserver.StartMail(t, testserver.MailConfig{})
	tr, err := email.New(email.Config{
		AllowPlaintext: true,
		RetryWait:      transports.Duration{Duration: 100 * time.Millisecond},
		ReconnectMin:   transports.Duration{Duration: 100 * time.Millisecond},
		ReconnectMax:   transports.Duration{Duration: time.Second},
		Domains: map[string]email.Servers{mail.Domain(): {
			IMAPHost: "127.0.0.1", IMAPPort: port(mail.IMAPAddr()), IMAPSecurity: "plain",
			SMTPHost: "127.0.0.1", SMTPPort: port(mail.SMTPAddr()), SMTPSecurity: "plain",
		}},
	}, nil)
	if err != nil {
		t.Fatalf("email.New: %v", err)
	}
	var seq atomic.Int64
	transporttest.Run(t, transporttest.Harness{
		Transport: tr,
		NewAccount: func(t *testing.T) transporttest.Account {
			name := fmt.Sprintf("acct%d", seq.Add(1))
			mail.AddUser(t, name, "pw-"+name)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			values, err := tr.Register(ctx, transports.RegisterRequest{
				User:   name + "@example.test",
				Values: transports.Values{"address": name + "@" + mail.Domain(), "password": "pw-" + name},
			})
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			return transporttest.Account{User: name + "@example.test", Values: values, Nick: name}
		},
		NewPeer: func(t *testing.T, a transporttest.Account) transporttest.Peer {
			name := fmt.Sprintf("peer%d", seq.Add(1))
			mail.AddUser(t, name, "pw-"+name)
			return &mailPeer{mail: mail, name: name, addr: name + "@" + mail.Domain(), account: a.Values["address"]}
		},
		ReportsStatus: true,
		Wait:          wait,
	})
}

// mailPeer is another mailbox on the same servers.
type mailPeer struct {
	mail    *testserver.Mail
	name    string
	addr    string
	account string // the account's address
}

func (p *mailPeer) Address() string { return p.addr }

func (p *mailPeer) Send(t *testing.T, body string) {
	t.Helper()
	raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: conformance\r\nMessage-ID: <%d.%s>\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		p.addr, p.account, time.Now().UnixNano(), p.addr, time.Now().Format(time.RFC1123Z), body)
	p.mail.Deliver(t, p.account, []byte(raw))
}

func (p *mailPeer) Expect(t *testing.T, body string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, raw := range p.mail.Messages(t, p.name, "pw-"+p.name) {
			if bytes.Contains(raw, []byte(body)) && strings.Contains(strings.ToLower(string(raw)), p.account) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s received no mail from %s with %q", p.addr, p.account, body)
}
