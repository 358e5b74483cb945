package config

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/transports"
)

func (c *Config) validateTop(p *problems, f *file) {
	switch strings.ToLower(f.LogLevel) {
	case "", "info":
		c.LogLevel = slog.LevelInfo
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		p.add("log_level", "%q is not one of debug, info, warn, error", f.LogLevel)
	}
	switch f.LogFormat {
	case "", "text":
		c.LogFormat = "text"
	case "json":
		c.LogFormat = "json"
	default:
		p.add("log_format", "%q is not one of text, json", f.LogFormat)
	}

	c.LogFile = f.LogFile
	if c.Metrics.Listen = f.Metrics.Listen; c.Metrics.Listen != "" {
		if err := checkHostPort(c.Metrics.Listen); err != nil {
			p.add("metrics.listen", "%v", err)
		}
	}

	c.XMPP.Server = f.XMPP.Server
	if f.XMPP.Server == "" {
		p.add("xmpp.server", "missing (the XMPP server's component address, host:port)")
	} else if err := checkHostPort(f.XMPP.Server); err != nil {
		p.add("xmpp.server", "%v", err)
	}
	c.XMPP.ReconnectMin = durationOr(f.XMPP.ReconnectMin, time.Second)
	c.XMPP.ReconnectMax = durationOr(f.XMPP.ReconnectMax, time.Minute)
	c.XMPP.PingInterval = durationOr(f.XMPP.PingInterval, time.Minute)
	c.XMPP.MaxStanzaBytes = DefaultMaxStanzaBytes
	if n := f.XMPP.MaxStanzaBytes; n != nil {
		switch c.XMPP.MaxStanzaBytes = *n; {
		case *n < MinMaxStanzaBytes:
			p.add("xmpp.max_stanza_bytes", "%d is under the minimum of %d", *n, MinMaxStanzaBytes)
		case *n > MaxMaxStanzaBytes:
			p.add("xmpp.max_stanza_bytes", "%d is over %d: keep it under the server's own limit (Prosody closes the stream on a component stanza over 512 KiB by default)", *n, MaxMaxStanzaBytes)
		}
	}
	if c.XMPP.ReconnectMin == 0 {
		p.add("xmpp.reconnect_min", "must be more than 0")
	}
	if c.XMPP.ReconnectMin > c.XMPP.ReconnectMax {
		p.add("xmpp.reconnect_min", "%v is more than xmpp.reconnect_max (%v)", c.XMPP.ReconnectMin, c.XMPP.ReconnectMax)
	}

	c.Database.Path = f.Database.Path
	c.Database.KeyFile = f.Database.KeyFile
	if c.Database.Path == "" {
		p.add("database.path", "missing (where the bbolt database lives)")
	}
	if c.Database.KeyFile == "" && c.Database.Path != "" {
		c.Database.KeyFile = c.Database.Path + ".key"
	}

	c.Access.AllowDomains = checkDomains(p, "access.allow_domains", f.Access.AllowDomains)
	if len(f.Access.AllowDomains) == 0 {
		p.add("access.allow_domains", `missing (the XMPP domains whose users may use the gateway, or ["*"] for everyone)`)
	}
	for i, a := range f.Access.Admins {
		j, err := jid.Parse(a)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			p.add(fmt.Sprintf("access.admins[%d]", i), "%q is not a bare JID (user@domain)", a)
			continue
		}
		c.Access.Admins = append(c.Access.Admins, j.String())
	}
}

func (c *Config) validateTransports(p *problems, f *file, kinds []string) {
	if len(f.Transports) == 0 {
		p.add("transport", "no [[transport]] configured")
	}
	seen := make(map[string]int)
	for i, t := range f.Transports {
		key := fmt.Sprintf("transport[%d]", i)
		tc := Transport{Kind: t.Kind, Name: t.Name, Options: Options{raw: t.Options, path: key + ".options"}}
		switch {
		case t.Kind == "":
			p.add(key+".kind", "missing (one of %s)", known(kinds))
		case !slices.Contains(kinds, t.Kind):
			p.add(key+".kind", "%q is not a known transport (known: %s)", t.Kind, known(kinds))
		}
		switch d, err := jid.Parse(t.Domain); {
		case t.Domain == "":
			p.add(key+".domain", "missing (the component domain, such as irc.example.org)")
		case err != nil || d.Localpart() != "" || d.Resourcepart() != "" || !strings.Contains(t.Domain, "."):
			p.add(key+".domain", "%q is not a domain name", t.Domain)
		default:
			tc.Domain = d.Domainpart()
			if j, ok := seen[tc.Domain]; ok {
				p.add(key+".domain", "%q is used by transport[%d]", t.Domain, j)
			}
			seen[tc.Domain] = i
		}
		switch {
		case t.Secret != "" && t.SecretFile != "":
			p.add(key+".secret", "give secret or secret_file, not both")
		case t.Secret == "" && t.SecretFile == "":
			p.add(key+".secret", "missing (the component secret, or secret_file)")
		case t.Secret != "":
			tc.Secret = t.Secret
		default:
			b, err := os.ReadFile(t.SecretFile)
			if err != nil {
				p.add(key+".secret_file", "%v", err)
			} else if tc.Secret = strings.TrimRight(string(b), "\r\n"); tc.Secret == "" {
				p.add(key+".secret_file", "%s is empty", t.SecretFile)
			}
		}
		if t.AllowDomains != nil {
			tc.AllowDomains = checkDomains(p, key+".allow_domains", t.AllowDomains)
		}
		tc.Limits = checkLimits(p, key+".limits", t.Limits)
		c.Transports = append(c.Transports, tc)
	}
}

func checkLimits(p *problems, key string, l limitsFile) transports.Limits {
	if l.MessagesPerMinute < 0 {
		p.add(key+".messages_per_minute", "must not be negative")
	}
	for name, n := range map[string]int{"burst": l.Burst, "max_message_bytes": l.MaxMessageBytes, "max_rooms": l.MaxRooms, "max_contacts": l.MaxContacts, "max_registrations": l.MaxRegistrations, "registration_attempts": l.RegistrationAttempts} {
		if n < 0 {
			p.add(key+"."+name, "must not be negative")
		}
	}
	out := transports.Limits{
		MessagesPerMinute:    l.MessagesPerMinute,
		Burst:                l.Burst,
		MaxMessageBytes:      l.MaxMessageBytes,
		MaxRooms:             l.MaxRooms,
		MaxContacts:          l.MaxContacts,
		MaxRegistrations:     l.MaxRegistrations,
		RegistrationAttempts: l.RegistrationAttempts,
	}
	if l.RegistrationWindow != nil {
		if out.RegistrationWindow = l.RegistrationWindow.Duration; out.RegistrationWindow == 0 {
			p.add(key+".registration_window", "must be more than 0")
		}
	}
	return out
}

func known(kinds []string) string {
	if len(kinds) == 0 {
		return "none in this build"
	}
	k := slices.Clone(kinds)
	slices.Sort(k)
	return strings.Join(k, ", ")
}

func durationOr(d *Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	n, err := strconv.Atoi(port)
	if host == "" || err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not host:port with a port from 1 to 65535", s)
	}
	return nil
}

func checkDomains(p *problems, key string, domains []string) []string {
	var out []string
	for i, d := range domains {
		if d == "*" {
			out = append(out, d)
			continue
		}
		j, err := jid.Parse(d)
		if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
			p.add(fmt.Sprintf("%s[%d]", key, i), "%q is not a domain", d)
			continue
		}
		out = append(out, j.Domainpart())
	}
	return out
}

// Allowed reports whether users of userDomain may use the transport.
func (c *Config) Allowed(transportDomain, userDomain string) bool {
	list := c.Access.AllowDomains
	for _, t := range c.Transports {
		if strings.EqualFold(t.Domain, transportDomain) && t.AllowDomains != nil {
			list = t.AllowDomains
		}
	}
	for _, d := range list {
		if d == "*" || strings.EqualFold(d, userDomain) {
			return true
		}
	}
	return false
}

// IsAdmin reports whether bareJID is a gateway admin.
func (c *Config) IsAdmin(bareJID string) bool {
	return slices.ContainsFunc(c.Access.Admins, func(a string) bool { return strings.EqualFold(a, bareJID) })
}
