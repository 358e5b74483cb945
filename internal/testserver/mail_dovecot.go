package testserver

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/emersion/go-smtp"

	"passerelle.dev/passerelle/internal/tb"
)

// writeDovecotConfig writes a self-contained dovecot.conf: everything under
// the run dir (base_dir holds the sockets, so its path stays short), a unique
// instance name, and unix sockets that Postfix's processes may use.
func (m *Mail) writeDovecotConfig(t tb.TB) {
	t.Helper()
	users := filepath.Join(m.dir, "users", "%Ln")
	conf := fmt.Sprintf(`instance_name = %[1]s
base_dir = %[2]s
state_dir = %[3]s
log_path = %[4]s
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <%[8]s
ssl_key = <%[9]s
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %%Ln
auth_failure_delay = 0
first_valid_uid = %[5]d
mail_location = maildir:~/Maildir
mail_plugins = quota
passdb {
  driver = passwd-file
  args = %[6]s
}
userdb {
  driver = passwd-file
  args = %[6]s
}
protocol imap {
  mail_max_userip_connections = 1000
}
service imap {
  process_limit = 1000
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[7]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[10]d
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
service auth {
  unix_listener auth-client {
    mode = 0666
  }
}
service quota-status {
  executable = quota-status -p postfix
  client_limit = 1
  unix_listener quota-status {
    mode = 0666
  }
}
plugin {
  quota = maildir:User quota
  quota_status_success = DUNNO
  quota_status_nouser = 550 5.1.1 User unknown
  quota_status_overquota = 552 5.2.2 Mailbox is full
}
`, filepath.Base(m.dir), m.dovecotBase(), m.path("dovecot-state"), m.path("dovecot.log"),
		m.uid, users, m.imapPort, m.certFile, m.keyFile, m.imapsPort)
	writeFile(t, m.path("dovecot.conf"), conf, 0o644)
}

// dovecotBase is Dovecot's base_dir, where its sockets live.
func (m *Mail) dovecotBase() string { return m.path("d") }

func (m *Mail) startDovecot(t tb.TB) {
	t.Helper()
	p := startProcess(t, "dovecot", m.path("dovecot.out"),
		[]string{"dovecot", "-F", "-c", m.path("dovecot.conf")})
	m.mu.Lock()
	m.dovecot = p
	m.mu.Unlock()
	if err := p.waitPort(m.IMAPAddr(), 15*time.Second); err != nil {
		m.Stop()
		t.Fatalf("%v\n%s", err, m.Log())
	}
}

func (m *Mail) stopDovecot() {
	m.mu.Lock()
	p := m.dovecot
	m.mu.Unlock()
	if p == nil {
		return
	}
	p.stop()
	// The master is gone; its children (imap-login holds the listening
	// socket) may linger a moment, and a restart must find the port free.
	waitGroupGone(p.cmd.Process.Pid, 5*time.Second)
}

// exNoUser is doveadm's exit status (EX_NOUSER) for "no users kicked".
const exNoUser = 68

// RestartIMAP stops Dovecot and starts it again on the same port and
// sockets, with the mail kept; IMAP clients are disconnected.
func (m *Mail) RestartIMAP(t tb.TB) {
	t.Helper()
	m.stopDovecot()
	m.startDovecot(t)
}

// Kick drops all IMAP connections of user (a name or an address of Domain)
// with "* BYE Server shutting down."; having none is not an error.
func (m *Mail) Kick(t tb.TB, user string) {
	t.Helper()
	out, err := exec.Command("doveadm", "-c", m.path("dovecot.conf"), "kick", localPart(user)).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == exNoUser {
		return
	}
	if err != nil {
		t.Fatalf("doveadm kick %s: %v\n%s\n%s", user, err, out, m.Log())
	}
}

// Deliver puts a raw RFC 5322 message into the INBOX of to (a name or an
// address of Domain) over Dovecot's LMTP socket, bypassing Postfix.
func (m *Mail) Deliver(t tb.TB, to string, raw []byte) {
	t.Helper()
	if err := m.deliver(m.address(to), raw); err != nil {
		t.Fatalf("deliver to %s over LMTP: %v\n%s", to, err, m.Log())
	}
}

func (m *Mail) deliver(to string, raw []byte) error {
	conn, err := net.DialTimeout("unix", filepath.Join(m.dovecotBase(), "lmtp"), 5*time.Second)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if err := c.Mail("", nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
