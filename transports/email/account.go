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
)

// dialTimeout bounds connecting to a mail server and logging in.
const dialTimeout = 30 * time.Second

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
	if a.imap, err = t.server("IMAP", v[fieldIMAPHost], v[fieldIMAPPort], v[fieldIMAPSecurity], preset.IMAPHost, preset.IMAPPort, preset.IMAPSecurity, 993, 143); err != nil {
		return account{}, err
	}
	if a.smtp, err = t.server("SMTP", v[fieldSMTPHost], v[fieldSMTPPort], v[fieldSMTPSecurity], preset.SMTPHost, preset.SMTPPort, preset.SMTPSecurity, 465, 587); err != nil {
		return account{}, err
	}
	if strings.ContainsAny(a.username+a.password, "\r\n\x00") {
		return account{}, transports.Errorf(transports.BadRequest, "line breaks are not allowed in the login name or password")
	}
	return a, nil
}

// server picks a server from the user's values, else the preset; the port
// defaults by security.
func (t *Transport) server(what, host, port, sec, pHost string, pPort int, pSec string, tlsPort, plainPort int) (server, error) {
	s := server{host: host, security: sec, roots: t.roots}
	if s.host == "" {
		// No server given: the domain's preset, whole (the form's default
		// security does not override it).
		s.host, s.security = pHost, firstNonEmpty(pSec, sec)
		if pPort != 0 {
			port = strconv.Itoa(pPort)
		}
	}
	if s.host == "" {
		return server{}, transports.Errorf(transports.BadRequest, "give the %s server: the gateway has no preset for this domain", what)
	}
	if strings.ContainsAny(s.host, " /\r\n\x00") {
		return server{}, transports.Errorf(transports.BadRequest, "%q is not a host name", s.host)
	}
	if s.security == "" {
		s.security = secTLS
	}
	if err := t.cfg.checkSecurity(s.security); err != nil {
		return server{}, transports.Errorf(transports.BadRequest, "%s: %v", what, err)
	}
	switch p, err := strconv.Atoi(port); {
	case port == "" || port == "0":
		s.port = plainPort
		if s.security == secTLS {
			s.port = tlsPort
		}
	case err != nil || p <= 0 || p > 65535:
		return server{}, transports.Errorf(transports.BadRequest, "%s port %q is not a port number", what, port)
	default:
		s.port = p
	}
	return s, nil
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
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	d := &net.Dialer{KeepAlive: 30 * time.Second}
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

// dialIMAP connects and logs in to the IMAP server.
func (a account) dialIMAP(ctx context.Context, opts *imapclient.Options) (*imapclient.Client, error) {
	conn, err := a.imap.dial(ctx)
	if err != nil {
		return nil, unreachable("IMAP", a.imap, err)
	}
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = a.imap.tlsConfig()
	var c *imapclient.Client
	if a.imap.security == secStartTLS {
		if c, err = imapclient.NewStartTLS(conn, opts); err != nil {
			conn.Close()
			return nil, unreachable("IMAP", a.imap, err)
		}
	} else {
		c = imapclient.New(conn, opts)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	if err := c.Login(a.username, a.password).Wait(); err != nil {
		c.Close()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil, transports.Errorf(transports.NotAuthorized, "the IMAP server %s refused the login: %s", a.imap.host, ie.Text)
		}
		return nil, unreachable("IMAP", a.imap, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

// dialSMTP connects and authenticates to the SMTP server.
func (a account) dialSMTP(ctx context.Context) (*smtp.Client, error) {
	conn, err := a.smtp.dial(ctx)
	if err != nil {
		return nil, unreachable("SMTP", a.smtp, err)
	}
	_ = conn.SetDeadline(time.Now().Add(2 * dialTimeout))
	var c *smtp.Client
	if a.smtp.security == secStartTLS {
		if c, err = smtp.NewClientStartTLS(conn, a.smtp.tlsConfig()); err != nil {
			conn.Close()
			return nil, unreachable("SMTP", a.smtp, err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	if err := c.Auth(sasl.NewPlainClient("", a.username, a.password)); err != nil {
		c.Close()
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return nil, transports.Errorf(transports.NotAuthorized, "the SMTP server %s refused the login: %s", a.smtp.host, se.Message)
		}
		return nil, unreachable("SMTP", a.smtp, err)
	}
	return c, nil
}

func (a account) checkSMTP(ctx context.Context) error {
	c, err := a.dialSMTP(ctx)
	if err != nil {
		return err
	}
	_ = c.Quit()
	return nil
}

func unreachable(what string, s server, err error) error {
	return &transports.Error{Kind: transports.Unreachable, Text: fmt.Sprintf("cannot reach the %s server %s: %s", what, s.addr(), shortErr(err)), Err: err}
}

// shortErr keeps an error readable for users.
func shortErr(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return msg
}
