// Package email is the email transport: a chat to alice%example.com is a
// mail to alice@example.com sent over SMTP, and new mail in the user's
// INBOX, watched with IMAP IDLE, arrives as chat messages.
//
// Each session owns a sender goroutine (the SMTP queue) and a watcher
// goroutine (one guarded IMAP connection), and keeps the INBOX cursor and
// the thread map in the registry, so no mail is lost; see
// docs/transports.md.
package email

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"

	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/netguard"
)

// Config is the transport's part of the gateway configuration.
type Config struct {
	// AllowPlaintext permits IMAP and SMTP without TLS. Meant for loopback
	// servers and tests: passwords then travel in clear.
	AllowPlaintext bool `toml:"allow_plaintext"`
	// WhileOffline keeps watching the mailboxes of users who are offline in
	// XMPP; new mail then waits in the XMPP server's offline storage.
	WhileOffline bool `toml:"while_offline"`
	// DefaultSubject is the subject of a mail whose chat message has none
	// (default "Message from XMPP").
	DefaultSubject string `toml:"default_subject"`
	// SkipMailingLists and SkipAutomated leave mailing-list and automated
	// mail (List-Id, Precedence: bulk, Auto-Submitted) in the mailbox
	// without delivering it as chat.
	SkipMailingLists bool `toml:"skip_mailing_lists"`
	SkipAutomated    bool `toml:"skip_automated"`
	// PollInterval is how often a mailbox is checked on servers without
	// IDLE (default 60s).
	PollInterval transports.Duration `toml:"poll_interval"`
	// SendAttempts and RetryWait govern delivery retries on temporary SMTP
	// failures (defaults 3 and 30s).
	SendAttempts int                 `toml:"send_attempts"`
	RetryWait    transports.Duration `toml:"retry_wait"`
	// ReconnectMin and ReconnectMax bound the wait between IMAP
	// reconnections (defaults 2s and 5m).
	ReconnectMin transports.Duration `toml:"reconnect_min"`
	ReconnectMax transports.Duration `toml:"reconnect_max"`
	// MaxBody bounds the text of one incoming mail shown in chat (default
	// 32 KiB, at most 64 KiB); the rest is cut with a note.
	MaxBody int `toml:"max_body"`
	// CAFile adds certificate authorities to verify the mail servers with
	// (private servers, tests); the system's are always trusted.
	CAFile string `toml:"ca_file"`
	// Domains presets the servers per email domain, so that users of those
	// domains give only their address and password. Preset servers are
	// trusted: they are dialled whatever their address.
	Domains map[string]Servers `toml:"domains"`
	// AllowCustomServers lets users name IMAP and SMTP servers other than
	// the presets (default false: presets only). Those are dialled only at
	// public addresses, and at the ranges in AllowAddresses.
	AllowCustomServers bool `toml:"allow_custom_servers"`
	// AllowAddresses lists addresses and ranges ("10.0.0.0/8", "::1") that
	// custom servers may be at although loopback, private, link-local or
	// otherwise special.
	AllowAddresses []string `toml:"allow_addresses"`
	// ConnectTimeout bounds connecting to a mail server and logging in
	// (default 30s).
	ConnectTimeout transports.Duration `toml:"connect_timeout"`
}

// Servers says where a mailbox's IMAP and SMTP servers are.
type Servers struct {
	IMAPHost     string `toml:"imap_host"`
	IMAPPort     int    `toml:"imap_port"`
	IMAPSecurity string `toml:"imap_security"` // tls (default), starttls, plain
	SMTPHost     string `toml:"smtp_host"`
	SMTPPort     int    `toml:"smtp_port"`
	SMTPSecurity string `toml:"smtp_security"` // tls (default), starttls, plain
}

// Transport is the email transport.
type Transport struct {
	cfg   Config
	log   *slog.Logger
	roots *x509.CertPool  // nil: the system's
	guard netguard.Policy // for custom servers
}

// New checks cfg and returns the transport.
func New(cfg Config, log *slog.Logger) (*Transport, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.DefaultSubject == "" {
		cfg.DefaultSubject = "Message from XMPP"
	}
	if strings.ContainsAny(cfg.DefaultSubject, "\r\n") {
		return nil, fmt.Errorf("email: default_subject has a line break")
	}
	setDefault(&cfg.PollInterval, time.Minute)
	setDefault(&cfg.RetryWait, 30*time.Second)
	setDefault(&cfg.ReconnectMin, 2*time.Second)
	setDefault(&cfg.ReconnectMax, 5*time.Minute)
	if cfg.SendAttempts <= 0 {
		cfg.SendAttempts = 3
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 32 << 10
	}
	if cfg.MaxBody > maxBodyCap {
		log.Warn("email: max_body lowered to keep chat messages within the XMPP servers' stanza limits", "max_body", cfg.MaxBody, "used", maxBodyCap)
		cfg.MaxBody = maxBodyCap
	}
	domains := make(map[string]Servers, len(cfg.Domains))
	for d, s := range cfg.Domains {
		d = strings.ToLower(d)
		for _, sec := range []string{s.IMAPSecurity, s.SMTPSecurity} {
			if err := cfg.checkSecurity(sec); err != nil {
				return nil, fmt.Errorf("email: domains.%s: %w", d, err)
			}
		}
		domains[d] = s
	}
	cfg.Domains = domains
	setDefault(&cfg.ConnectTimeout, 30*time.Second)
	allow, err := netguard.ParsePrefixes(cfg.AllowAddresses)
	if err != nil {
		return nil, fmt.Errorf("email: allow_addresses: %w", err)
	}
	t := &Transport{cfg: cfg, log: log, guard: netguard.Policy{Allow: allow}}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("email: ca_file: %w", err)
		}
		if t.roots, err = x509.SystemCertPool(); err != nil {
			t.roots = x509.NewCertPool()
		}
		if !t.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("email: ca_file %s: no certificates", cfg.CAFile)
		}
	}
	return t, nil
}

func setDefault(d *transports.Duration, v time.Duration) {
	if d.Duration <= 0 {
		d.Duration = v
	}
}

// Security modes of a server connection.
const (
	secTLS      = "tls"
	secStartTLS = "starttls"
	secPlain    = "plain"
)

func (c Config) checkSecurity(s string) error {
	switch s {
	case "", secTLS, secStartTLS:
		return nil
	case secPlain:
		if !c.AllowPlaintext {
			return fmt.Errorf("plaintext connections are not allowed on this gateway")
		}
		return nil
	}
	return fmt.Errorf("security %q is not one of tls, starttls, plain", s)
}

// Registration field names.
const (
	fieldAddress       = "address"
	fieldPassword      = "password"
	fieldUsername      = "username"
	fieldIMAPHost      = "imap_host"
	fieldIMAPPort      = "imap_port"
	fieldIMAPSecurity  = "imap_security"
	fieldSMTPHost      = "smtp_host"
	fieldSMTPPort      = "smtp_port"
	fieldSMTPSecurity  = "smtp_security"
	fieldSkipLists     = "skip_mailing_lists"
	fieldSkipAutomated = "skip_automated"
)

// passwordBoundTo are the fields that say where the password goes: a
// registered user who changes one of them must give the password again.
var passwordBoundTo = []string{fieldAddress, fieldIMAPHost, fieldIMAPPort, fieldIMAPSecurity, fieldSMTPHost, fieldSMTPPort, fieldSMTPSecurity}

// Info implements transports.Transport.
func (t *Transport) Info() transports.Info {
	sec := []transports.Option{{Label: "TLS", Value: secTLS}, {Label: "STARTTLS", Value: secStartTLS}}
	if t.cfg.AllowPlaintext {
		sec = append(sec, transports.Option{Label: "None (plaintext)", Value: secPlain})
	}
	instr := "Give your email address and password (an app password works the same). Leave the servers empty: the gateway knows the providers it serves."
	if t.cfg.AllowCustomServers {
		instr = "Give your email address and password (an app password works the same). Servers may be left empty where the gateway knows your provider."
	}
	return transports.Info{
		Type:         "smtp",
		Name:         "Email",
		Instructions: instr,
		Fields: []transports.Field{
			{Name: fieldAddress, Label: "Email address", Kind: transports.Text, Required: true},
			{Name: fieldPassword, Label: "Password", Kind: transports.Secret, Required: true, BoundTo: passwordBoundTo},
			{Name: fieldUsername, Label: "Login name (if not the address)", Kind: transports.Text},
			{Name: fieldIMAPHost, Label: "IMAP server", Kind: transports.Text},
			{Name: fieldIMAPPort, Label: "IMAP port", Kind: transports.Text},
			{Name: fieldIMAPSecurity, Label: "IMAP security", Kind: transports.List, Default: secTLS, Options: sec},
			{Name: fieldSMTPHost, Label: "SMTP server", Kind: transports.Text},
			{Name: fieldSMTPPort, Label: "SMTP port", Kind: transports.Text},
			{Name: fieldSMTPSecurity, Label: "SMTP security", Kind: transports.List, Default: secTLS, Options: sec},
			{Name: fieldSkipLists, Label: "Leave mailing-list mail out of chat", Kind: transports.Bool, Default: strconv.FormatBool(t.cfg.SkipMailingLists)},
			{Name: fieldSkipAutomated, Label: "Leave automated mail out of chat", Kind: transports.Bool, Default: strconv.FormatBool(t.cfg.SkipAutomated)},
		},
		AddressPrompt: "Email address",
		AddressDesc:   "The address of the person to write to, such as alice@example.com.",
		AlwaysOn:      t.cfg.WhileOffline,
		// A person chatting by mail, not a relay: few mails a minute.
		Limits: transports.Limits{MessagesPerMinute: 10, Burst: 10, MaxMessageBytes: 256 << 10},
	}
}

// ParseAddress implements transports.Transport: a plain addr-spec, in
// lower case.
func (t *Transport) ParseAddress(addr string) (string, error) {
	return parseAddress(addr)
}

func parseAddress(addr string) (string, error) {
	bad := transports.Errorf(transports.BadAddress, "%q is not an email address", addr)
	if addr == "" || strings.ContainsAny(addr, " \t\r\n\"<>,;()\\") || strings.Count(addr, "@") != 1 {
		return "", bad
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || !strings.EqualFold(a.Address, addr) {
		return "", bad
	}
	local, domain, _ := strings.Cut(a.Address, "@")
	if local == "" || !strings.Contains(domain, ".") && domain != "localhost" {
		return "", bad
	}
	return strings.ToLower(a.Address), nil
}

// Register implements transports.Transport: it logs in to both servers
// before accepting anything.
func (t *Transport) Register(ctx context.Context, req transports.RegisterRequest) (transports.Values, error) {
	v := transports.Values{}
	for k, val := range req.Values {
		v[k] = strings.TrimSpace(val)
	}
	kept := v[fieldPassword] == "" && req.Previous != nil
	if kept {
		v[fieldPassword] = req.Previous[fieldPassword]
	}
	acct, err := t.account(v)
	if err != nil {
		return nil, err
	}
	if kept {
		// The gateway checks this already (Field.BoundTo); the stored password
		// still never goes to servers other than those it was proven on.
		for _, k := range []string{fieldIMAPHost, fieldIMAPPort, fieldIMAPSecurity, fieldSMTPHost, fieldSMTPPort, fieldSMTPSecurity} {
			if !strings.EqualFold(acct.values()[k], req.Previous[k]) {
				return nil, transports.Errorf(transports.BadRequest, "the mail servers changed: enter the password again")
			}
		}
	}
	c, err := acct.dialIMAP(ctx, nil)
	if err != nil {
		return nil, err
	}
	// The INBOX position from here on: mail arriving before the first
	// login is delivered then.
	start, err := inboxPosition(c.Client, acct)
	_ = c.Logout().Wait()
	_ = c.Close()
	if err != nil {
		return nil, &transports.Error{Kind: transports.Unreachable, Text: "cannot open the INBOX", Err: c.explain(err)}
	}
	if prev := parseStart(req.Previous[fieldInboxStart]); prev.Mailbox == start.Mailbox && prev.Validity == start.Validity {
		start = prev // registered again before any login: keep the first position
	}
	if err := acct.checkSMTP(ctx); err != nil {
		return nil, err
	}
	stored := acct.values()
	stored[fieldInboxStart] = start.String()
	for _, k := range []string{fieldSkipLists, fieldSkipAutomated} {
		if x := v[k]; x != "" {
			stored[k] = x
		}
	}
	return stored, nil
}

// Login implements transports.Transport: the IMAP login happens here, so a
// wrong password is reported at once; the mailbox is then watched in the
// background.
func (t *Transport) Login(ctx context.Context, req transports.LoginRequest) (transports.Session, error) {
	acct, err := t.account(req.Values)
	if err != nil {
		return nil, err
	}
	log := req.Logger
	if log == nil {
		log = t.log
	}
	s := newSession(t, acct, req, log)
	c, err := acct.dialIMAP(ctx, s.imapOptions())
	if err != nil {
		return nil, err
	}
	// Fix the INBOX position now: mail that arrives from here on is
	// delivered, even if the session ends before the watcher starts.
	if _, err := s.syncCursor(c.Client); err != nil {
		c.Close()
		return nil, &transports.Error{Kind: transports.Unreachable, Text: "cannot open the INBOX", Err: c.explain(err)}
	}
	s.start(c)
	return s, nil
}
