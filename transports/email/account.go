package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/netguard"
)

// account is one user's mailbox: address, credentials and servers.
type account struct {
	address  string
	username string
	password string
	imap     server
	smtp     server
}

// server is one of the account's servers.
type server struct {
	host     string
	port     int
	security string
	roots    *x509.CertPool // nil: the system's
	timeout  time.Duration
	// guard is the address policy of a server the user named; nil for the
	// admin's presets, which are trusted.
	guard *netguard.Policy
}

func (s server) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// account resolves registration values, completed by the domain's preset,
// into an account.
func (t *Transport) account(v transports.Values) (account, error) {
	addr, err := parseAddress(v[fieldAddress])
	if err != nil {
		return account{}, transports.Errorf(transports.BadRequest, "%q is not an email address", v[fieldAddress])
	}
	if v[fieldPassword] == "" {
		return account{}, transports.Errorf(transports.BadRequest, "a password is required")
	}
	_, domain, _ := strings.Cut(addr, "@")
	preset := t.cfg.Domains[domain]
	a := account{address: addr, username: v[fieldUsername], password: v[fieldPassword]}
	if a.username == "" {
		a.username = addr
	}
	if a.imap, err = t.server("IMAP", v[fieldIMAPHost], v[fieldIMAPPort], v[fieldIMAPSecurity], preset.imap(), Servers.imap); err != nil {
		return account{}, err
	}
	if a.smtp, err = t.server("SMTP", v[fieldSMTPHost], v[fieldSMTPPort], v[fieldSMTPSecurity], preset.smtp(), Servers.smtp); err != nil {
		return account{}, err
	}
	if strings.ContainsAny(a.username+a.password, "\r\n\x00") {
		return account{}, transports.Errorf(transports.BadRequest, "line breaks are not allowed in the login name or password")
	}
	return a, nil
}

// server picks the server the user named, else the domain's preset. A
// server that is one of the admin's presets (same host, and same port if
// the user gave one) is that preset, whole, and trusted; any other is a
// custom server, allowed only with allow_custom_servers and dialled through
// the address policy.
func (t *Transport) server(what, host, port, sec string, own preset, of func(Servers) preset) (server, error) {
	if host == "" {
		// No server given: the domain's preset, whole (the form's default
		// security does not override it).
		if own.host == "" {
			return server{}, transports.Errorf(transports.BadRequest, "give the %s server: the gateway has no preset for this domain", what)
		}
		return t.preset(own, sec), nil
	}
	if strings.ContainsAny(host, " /\r\n\x00") || len(host) > 253 {
		return server{}, transports.Errorf(transports.BadRequest, "%q is not a host name", host)
	}
	p, err := strconv.Atoi(port)
	switch {
	case port == "" || port == "0":
		p = 0
	case err != nil || p <= 0 || p > 65535:
		return server{}, transports.Errorf(transports.BadRequest, "%s port %q is not a port number", what, port)
	}
	matches := func(pr preset) (server, bool) {
		ps := t.preset(pr, sec)
		return ps, pr.host != "" && strings.EqualFold(ps.host, host) && (p == 0 || p == ps.port)
	}
	if ps, ok := matches(own); ok {
		return ps, nil
	}
	for _, servers := range t.cfg.Domains {
		if ps, ok := matches(of(servers)); ok {
			return ps, nil
		}
	}
	if !t.cfg.AllowCustomServers {
		return server{}, transports.Errorf(transports.Forbidden, "%s server %s: custom mail servers are not allowed on this gateway; leave the servers empty to use your provider's, if the gateway knows it", what, host)
	}
	s := server{host: host, port: p, security: sec, roots: t.roots, timeout: t.cfg.ConnectTimeout.Duration, guard: &t.guard}
	if s.security == "" {
		s.security = secTLS
	}
	if err := t.cfg.checkSecurity(s.security); err != nil {
		return server{}, transports.Errorf(transports.BadRequest, "%s: %v", what, err)
	}
	if s.port == 0 {
		s.port = defaultPort(what, s.security)
	}
	return s, nil
}

// preset is one preset server as the admin configured it.
type preset struct {
	what     string // IMAP or SMTP
	host     string
	port     int
	security string
}

func (s Servers) imap() preset { return preset{"IMAP", s.IMAPHost, s.IMAPPort, s.IMAPSecurity} }
func (s Servers) smtp() preset { return preset{"SMTP", s.SMTPHost, s.SMTPPort, s.SMTPSecurity} }

// preset resolves a preset server; sec applies where the admin set no
// security.
func (t *Transport) preset(p preset, sec string) server {
	s := server{host: p.host, port: p.port, security: firstNonEmpty(p.security, sec), roots: t.roots, timeout: t.cfg.ConnectTimeout.Duration}
	if s.security == "" {
		s.security = secTLS
	}
	if s.port == 0 {
		s.port = defaultPort(p.what, s.security)
	}
	return s
}

// defaultPort is the usual port of an IMAP or SMTP server.
func defaultPort(what, security string) int {
	switch {
	case what == "IMAP" && security == secTLS:
		return 993
	case what == "IMAP":
		return 143
	case security == secTLS:
		return 465
	default:
		return 587
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// values is what is stored for the account.
func (a account) values() transports.Values {
	return transports.Values{
		fieldAddress:      a.address,
		fieldPassword:     a.password,
		fieldUsername:     a.username,
		fieldIMAPHost:     a.imap.host,
		fieldIMAPPort:     strconv.Itoa(a.imap.port),
		fieldIMAPSecurity: a.imap.security,
		fieldSMTPHost:     a.smtp.host,
		fieldSMTPPort:     strconv.Itoa(a.smtp.port),
		fieldSMTPSecurity: a.smtp.security,
	}
}

// dial opens a TCP connection, with TLS for implicit-TLS servers.
func (s server) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	if s.guard != nil {
		d = s.guard.Dialer(d)
	}
	conn, err := d.DialContext(ctx, "tcp", s.addr())
	if err != nil {
		return nil, err
	}
	if s.security != secTLS {
		return conn, nil
	}
	tc := tls.Client(conn, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

func (s server) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12, RootCAs: s.roots}
}

// imapConn is a logged-in IMAP client whose connection goes through the
// guard (imapguard.go).
type imapConn struct {
	*imapclient.Client
	guard *guardConn
}

// explain is err, or the guard's error if the guard failed the connection:
// go-imap's own wording of it would bury the cause under one prefix per
// nesting level.
func (c *imapConn) explain(err error) error {
	if gerr := c.guard.tripped(); gerr != nil {
		return gerr
	}
	return err
}

// dialIMAP connects and logs in to the IMAP server. go-imap reads the
// (decrypted) connection only through the guard.
func (a account) dialIMAP(ctx context.Context, opts *imapclient.Options) (*imapConn, error) {
	conn, err := a.imap.dial(ctx)
	if err != nil {
		return nil, unreachable("IMAP", a.imap, err)
	}
	hctx, done := a.imap.handshake(ctx, conn)
	defer done()
	var g *guardConn
	if a.imap.security == secStartTLS {
		if g, err = startTLSIMAP(hctx, conn, a.imap.tlsConfig()); err != nil {
			conn.Close()
			return nil, unreachable("IMAP", a.imap, cause(hctx, err))
		}
	} else {
		g = newGuardConn(conn)
	}
	c := &imapConn{Client: imapclient.New(g, opts), guard: g}
	if err := c.Login(a.username, a.password).Wait(); err != nil {
		c.Close()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil, transports.Errorf(transports.NotAuthorized, "the IMAP server %s refused the login: %s", a.imap.host, clip(ie.Text))
		}
		return nil, unreachable("IMAP", a.imap, cause(hctx, c.explain(err)))
	}
	if !done() {
		c.Close()
		return nil, unreachable("IMAP", a.imap, hctx.Err())
	}
	return c, nil
}

// dialSMTP connects and authenticates to the SMTP server. go-smtp reads
// the (decrypted) connection only through the guard (smtpguard.go).
func (a account) dialSMTP(ctx context.Context) (*smtp.Client, error) {
	conn, err := a.smtp.dial(ctx)
	if err != nil {
		return nil, unreachable("SMTP", a.smtp, err)
	}
	hctx, done := a.smtp.handshake(ctx, conn)
	defer done()
	var g *smtpGuardConn
	if a.smtp.security == secStartTLS {
		if g, err = startTLSSMTP(hctx, conn, a.smtp.tlsConfig()); err != nil {
			conn.Close()
			return nil, unreachable("SMTP", a.smtp, cause(hctx, err))
		}
	} else {
		g = &smtpGuardConn{Conn: conn}
	}
	c := smtp.NewClient(g)
	if err := c.Auth(sasl.NewPlainClient("", a.username, a.password)); err != nil {
		c.Close()
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return nil, transports.Errorf(transports.NotAuthorized, "the SMTP server %s refused the login: %s", a.smtp.host, clip(se.Message))
		}
		return nil, unreachable("SMTP", a.smtp, cause(hctx, err))
	}
	if !done() {
		c.Close()
		return nil, unreachable("SMTP", a.smtp, hctx.Err())
	}
	return c, nil
}

// handshake bounds a connection's greeting, STARTTLS and login by the
// server's timeout: the IMAP and SMTP libraries set deadlines of their own
// (30 s, 5 min), so the connection is closed when the time runs out. done
// ends the bound; it reports false if the time had run out already.
func (s server) handshake(ctx context.Context, conn net.Conn) (hctx context.Context, done func() bool) {
	hctx, cancel := context.WithTimeout(ctx, s.timeout)
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	return hctx, func() bool {
		ok := stop()
		cancel()
		return ok
	}
}

// cause is err, or the handshake's timeout if that closed the connection.
func cause(hctx context.Context, err error) error {
	if hctx.Err() != nil {
		return fmt.Errorf("%w (%v)", hctx.Err(), err)
	}
	return err
}

func (a account) checkSMTP(ctx context.Context) error {
	c, err := a.dialSMTP(ctx)
	if err != nil {
		return err
	}
	_ = c.Quit()
	return nil
}

// unreachable describes a failed connection. For a server the user named,
// the text does not tell a refused port from a silent one or a TLS failure
// (netguard.UserText), so the gateway cannot be used to scan a network; the
// cause stays in the log. An admin's preset keeps the detail: users cannot
// aim it, and the detail helps them and the admin see what is wrong.
func unreachable(what string, s server, err error) error {
	if s.guard == nil {
		return &transports.Error{Kind: transports.Unreachable, Text: fmt.Sprintf("cannot reach the %s server %s: %s", what, s.addr(), clip(err.Error())), Err: err}
	}
	kind := transports.Unreachable
	if errors.Is(err, netguard.ErrRefused) {
		kind = transports.Forbidden // retrying will not help
	}
	return &transports.Error{Kind: kind, Text: fmt.Sprintf("cannot reach the %s server %s: %s", what, s.addr(), netguard.UserText(err)), Err: err}
}

// clip keeps a text from a server or an error readable for users: one
// line, at most 200 bytes.
func clip(msg string) string {
	msg = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return msg
}

// shortErr keeps an error readable for users.
func shortErr(err error) string { return clip(err.Error()) }
