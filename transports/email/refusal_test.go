package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/transports"
)

// refusingSink stands for the gateway: it refuses the events refuse
// matches, and passes the messages it takes on.
type refusingSink struct {
	mu     sync.Mutex
	refuse func(transports.Message) bool
	got    chan transports.Message
}

func (s *refusingSink) Deliver(ctx context.Context, ev transports.Event) error {
	m, ok := ev.(transports.Message)
	if !ok {
		return nil
	}
	s.mu.Lock()
	refuse := s.refuse
	s.mu.Unlock()
	if refuse != nil && refuse(m) {
		return errors.New("refused")
	}
	select {
	case s.got <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *refusingSink) setRefuse(f func(transports.Message) bool) {
	s.mu.Lock()
	s.refuse = f
	s.mu.Unlock()
}

func (s *refusingSink) next(t *testing.T) transports.Message {
	t.Helper()
	select {
	case m := <-s.got:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15s")
	}
	return transports.Message{}
}

// loginWith logs alice in against a real Dovecot with sink as the gateway.
func loginWith(t *testing.T, sink transports.Sink) (*testserver.Mail, *memState) {
	t.Helper()
	m := testserver.StartMail(t, testserver.MailConfig{Users: []testserver.MailUser{{Name: "alice", Password: "alice-mail"}}})
	host, port, _ := strings.Cut(m.IMAPAddr(), ":")
	smtpPort := m.SMTPAddr()[strings.LastIndexByte(m.SMTPAddr(), ':')+1:]
	var ip, sp int
	fmt.Sscan(port, &ip)
	fmt.Sscan(smtpPort, &sp)
	tr, err := New(Config{
		AllowPlaintext: true,
		ReconnectMin:   transports.Duration{Duration: 50 * time.Millisecond},
		ReconnectMax:   transports.Duration{Duration: 200 * time.Millisecond},
		Domains: map[string]Servers{m.Domain(): {
			IMAPHost: host, IMAPPort: ip, IMAPSecurity: "plain",
			SMTPHost: host, SMTPPort: sp, SMTPSecurity: "plain",
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &memState{m: map[string][]byte{}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sess, err := tr.Login(ctx, transports.LoginRequest{
		User:   "alice@example.test",
		Values: transports.Values{fieldAddress: "alice@" + m.Domain(), fieldPassword: "alice-mail"},
		State:  st,
		Events: sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sess.Close(ctx)
	})
	return m, st
}

func plainMail(subject, body string) []byte {
	return []byte("From: carol@elsewhere.example\r\nSubject: " + subject + "\r\n\r\n" + body + "\r\n")
}

// TestMailRefusedByGatewayIsSkipped: a mail that the gateway refuses
// every time, while it takes other messages, is skipped with a notice
// after a few tries, and the mail after it arrives.
func TestMailRefusedByGatewayIsSkipped(t *testing.T) {
	sink := &refusingSink{got: make(chan transports.Message, 10)}
	sink.setRefuse(func(m transports.Message) bool { return m.Body == "poison" })
	m, _ := loginWith(t, sink)
	m.Deliver(t, "alice", plainMail("bad", "poison"))
	m.Deliver(t, "alice", plainMail("good", "fine"))
	n := sink.next(t)
	if n.From != "" || !strings.Contains(n.Body, "“bad”") || !strings.Contains(n.Body, "did not take it") {
		t.Errorf("notice: %+v", n)
	}
	if g := sink.next(t); g.Body != "fine" {
		t.Errorf("after the refused mail: %+v", g)
	}
}

// TestGatewayDownLosesNothing: while the gateway takes nothing at all (it
// is down), no mail is skipped however long it lasts; it arrives once the
// gateway is back.
func TestGatewayDownLosesNothing(t *testing.T) {
	sink := &refusingSink{got: make(chan transports.Message, 10)}
	sink.setRefuse(func(transports.Message) bool { return true })
	m, st := loginWith(t, sink)
	m.Deliver(t, "alice", plainMail("wait", "for the gateway"))
	// Long enough for many more tries than maxStrikes.
	time.Sleep(3 * time.Second)
	var cur cursor
	raw, _ := st.Get(context.Background(), cursorKey)
	if err := json.Unmarshal(raw, &cur); err != nil || cur.Last != 0 {
		t.Errorf("the position moved while the gateway was down: %s", raw)
	}
	sink.setRefuse(nil)
	if g := sink.next(t); g.Body != "for the gateway" {
		t.Errorf("after the gateway came back: %+v", g)
	}
}
