package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// MailUser is a mailbox on the mail system, Name@Domain. Dovecot lowercases
// the name and drops any domain (auth_username_format = %Ln), so "alice",
// "Alice" and "alice@mail.test" are one account.
type MailUser struct {
	Name     string
	Password string
}

// MailConfig describes a mail system to start.
type MailConfig struct {
	// Domain is the mail domain (default "mail.test").
	Domain string
	// Users are the mailboxes that exist from the start.
	Users []MailUser
}

// Mail is a private Dovecot (IMAP, LMTP, SASL and a recipient check) and
// Postfix (SMTP) on loopback, with all state in one run directory.
//
// Postfix checks every RCPT for Domain against Dovecot's user database
// through Dovecot's quota-status policy service, which reads the passwd-file
// on each lookup: a recipient added with AddUser is accepted at once, and an
// unknown one is refused at RCPT time with "550 5.1.1 ... User unknown"
// (nothing is queued, so no bounce). Mail for other domains is refused at
// RCPT time as well: "554 5.7.1 Relay access denied" without AUTH, "550"
// from default_transport = error: with it. Nothing leaves the machine.
type Mail struct {
	domain   string
	dir      string
	imapPort int
	smtpPort int
	// TLS: implicit-TLS listeners, and the CA of their certificate (the
	// plain ports offer STARTTLS with it too).
	imapsPort int
	smtpsPort int
	certFile  string
	keyFile   string
	caFile    string
	uid, gid  int // owner of the mail (nobody), so Dovecot never writes as root

	mu      sync.Mutex
	stamps  map[string]time.Time // user -> mtime of their passwd-file
	dovecot *process
	postfix *process
}

// StartMail starts Dovecot and then Postfix on free loopback ports; both
// stop when the test ends. It needs root (Postfix does): without it the test
// is skipped, or fails when PASSERELLE_REQUIRE_SERVERS=1.
func StartMail(t tb.TB, cfg MailConfig) *Mail {
	t.Helper()
	Require(t, "dovecot", "dovecot-imapd dovecot-lmtpd")
	Require(t, "doveadm", "dovecot-core")
	Require(t, "postfix", "postfix")
	if os.Geteuid() != 0 {
		msg := "StartMail needs root: Postfix does not start as another user"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if cfg.Domain == "" {
		cfg.Domain = "mail.test"
	}
	ports := freePorts(t, 4)
	m := &Mail{
		domain:    strings.ToLower(cfg.Domain),
		dir:       runDir(t, "mail"),
		imapPort:  ports[0],
		smtpPort:  ports[1],
		imapsPort: ports[2],
		smtpsPort: ports[3],
		uid:       65534,
		gid:       65534,
		stamps:    map[string]time.Time{},
	}
	for _, u := range cfg.Users {
		m.addUser(t, u.Name, u.Password)
	}
	m.certFile, m.keyFile, m.caFile = writeTestCert(t, m.dir, "mail."+m.domain)
	m.writeDovecotConfig(t)
	m.writePostfixConfig(t)
	t.Cleanup(m.Stop)
	m.startDovecot(t)
	m.startPostfix(t)
	return m
}

// IMAPAddr is the plaintext IMAP listener, 127.0.0.1:port; LOGIN and
// AUTHENTICATE PLAIN work without TLS, and IDLE is supported.
func (m *Mail) IMAPAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.imapPort) }

// IMAPSAddr is the implicit-TLS IMAP listener.
func (m *Mail) IMAPSAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.imapsPort) }

// SMTPSAddr is the implicit-TLS SMTP submission listener.
func (m *Mail) SMTPSAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.smtpsPort) }

// CAFile is the PEM file of the CA that signed the servers' certificate,
// issued for "mail." + Domain and 127.0.0.1.
func (m *Mail) CAFile() string { return m.caFile }

// SMTPAddr is the plaintext SMTP listener, 127.0.0.1:port. It takes mail
// for Domain from anyone and AUTH PLAIN or LOGIN without TLS; relaying to
// other domains needs AUTH (and is then refused anyway).
func (m *Mail) SMTPAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.smtpPort) }

// Domain is the mail domain.
func (m *Mail) Domain() string { return m.domain }

// AddUser creates a mailbox, or changes its password; it works while the
// servers run, for IMAP, SMTP AUTH, LMTP and as a recipient. A new user is
// live at once; a password change waits for the next second of the clock
// (Dovecot checks a passwd-file for changes at most once a second).
func (m *Mail) AddUser(t tb.TB, name, password string) {
	t.Helper()
	m.addUser(t, name, password)
}

// Stop stops Postfix and Dovecot and waits for all their processes;
// calling it again does nothing.
func (m *Mail) Stop() {
	m.stopPostfix()
	m.stopDovecot()
}

// Log returns the ends of Dovecot's and Postfix's logs.
func (m *Mail) Log() string {
	var b strings.Builder
	for _, name := range []string{"dovecot.log", "dovecot.out", "postfix.log", "postfix.out"} {
		fmt.Fprintf(&b, "--- %s\n%s\n", name, tail(filepath.Join(m.dir, name)))
	}
	return b.String()
}

// localPart maps a user name or address to Dovecot's account name (%Ln).
func localPart(name string) string {
	name, _, _ = strings.Cut(name, "@")
	return strings.ToLower(name)
}

// address makes an address in Domain of a bare user name.
func (m *Mail) address(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	return name + "@" + m.domain
}

func (m *Mail) addUser(t tb.TB, name, password string) {
	t.Helper()
	user := localPart(name)
	if user == "" || strings.ContainsAny(user, "/") || strings.ContainsAny(user+password, ":\r\n") {
		t.Fatalf("testserver: bad mail user %q (empty, or a / in the name or a : or newline in name or password)", name)
	}
	home := m.home(user)
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, m.uid, m.gid); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, known := m.stamps[user]
	// One passwd-file per user: Dovecot's auth process reads a file it has
	// not seen on the first lookup, so a new user works at once.
	path := filepath.Join(m.dir, "users", user)
	tmp := path + ".tmp"
	writeFile(t, tmp, fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s::\n", user, password, m.uid, m.gid, home), 0o644)
	// Dovecot re-reads a file it has read only when its mtime (in seconds)
	// or size changed: every version gets a later mtime than the last.
	stamp := m.stamps[user].Add(time.Second)
	if now := time.Now().Truncate(time.Second); now.After(stamp) {
		stamp = now
	}
	m.stamps[user] = stamp
	if err := os.Chtimes(tmp, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if !known {
		return
	}
	// It also checks at most once per second of its clock: let the second
	// of a lookup that may have just read the old file pass.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}

func (m *Mail) home(user string) string { return filepath.Join(m.dir, "home", user) }

func (m *Mail) path(name string) string { return filepath.Join(m.dir, name) }
