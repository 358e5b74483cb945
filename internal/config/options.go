package config

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"passerelle.dev/passerelle/transports"
)

// Options are a transport's own settings, the [transport.options] table,
// kept undecoded until the transport decodes them into its own type.
type Options struct {
	raw  map[string]any
	path string
}

// IsZero reports whether no options were given.
func (o Options) IsZero() bool { return len(o.raw) == 0 }

// Keys returns the option names, sorted.
func (o Options) Keys() []string {
	keys := make([]string, 0, len(o.raw))
	for k := range o.raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Decode decodes the options into v (a pointer to a struct with toml tags).
// Keys v does not have are errors naming their full path, so that a typo
// never passes silently.
func (o Options) Decode(v any) error {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(o.raw); err != nil {
		return fmt.Errorf("%s: %w", o.path, err)
	}
	md, err := toml.NewDecoder(&buf).Decode(v)
	if err != nil {
		return fmt.Errorf("%s: %w", o.path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var list []string
		for _, k := range und {
			list = append(list, o.path+"."+k.String()+": unknown key")
		}
		return fmt.Errorf("%s", strings.Join(list, "; "))
	}
	return nil
}

// Summary describes what the gateway would do with this configuration,
// without any secret.
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s is valid\n", c.Path)
	fmt.Fprintf(&b, "XMPP server (component listener): %s\n", c.XMPP.Server)
	fmt.Fprintf(&b, "  reconnect backoff %v to %v, keep-alive ping every %v\n", c.XMPP.ReconnectMin, c.XMPP.ReconnectMax, c.XMPP.PingInterval)
	fmt.Fprintf(&b, "  stanzas written at most %d bytes (longer texts are cut)\n", c.XMPP.MaxStanzaBytes)
	fmt.Fprintf(&b, "database: %s (key file %s)\n", c.Database.Path, c.Database.KeyFile)
	logTo := c.LogFile
	if logTo == "" {
		logTo = "stderr"
	}
	fmt.Fprintf(&b, "log level %s, format %s, to %s (reopened on SIGHUP)\n", c.LogLevel, c.LogFormat, logTo)
	if c.Metrics.Listen != "" {
		fmt.Fprintf(&b, "metrics and health: http://%s/metrics and /healthz\n", c.Metrics.Listen)
	} else {
		fmt.Fprintf(&b, "metrics and health: off (set metrics.listen)\n")
	}
	fmt.Fprintf(&b, "users allowed from: %s\n", strings.Join(c.Access.AllowDomains, ", "))
	if len(c.Access.Admins) > 0 {
		fmt.Fprintf(&b, "admins: %s\n", strings.Join(c.Access.Admins, ", "))
	}
	for i, t := range c.Transports {
		name := t.Name
		if name == "" {
			name = "(default name)"
		}
		fmt.Fprintf(&b, "transport[%d]: %s on component %s, %s\n", i, t.Kind, t.Domain, name)
		if t.AllowDomains != nil {
			fmt.Fprintf(&b, "  users allowed from: %s\n", strings.Join(t.AllowDomains, ", "))
		}
		if l := t.Limits; l != (transports.Limits{}) {
			fmt.Fprintf(&b, "  limits set: %s\n", describeLimits(l))
		}
		if keys := t.Options.Keys(); len(keys) > 0 {
			fmt.Fprintf(&b, "  options set: %s\n", strings.Join(keys, ", "))
		}
	}
	return b.String()
}

func describeLimits(l transports.Limits) string {
	var parts []string
	if l.MessagesPerMinute > 0 {
		parts = append(parts, fmt.Sprintf("%g messages a minute per user", l.MessagesPerMinute))
	}
	if l.Burst > 0 {
		parts = append(parts, fmt.Sprintf("bursts of %d", l.Burst))
	}
	if l.MaxMessageBytes > 0 {
		parts = append(parts, fmt.Sprintf("messages up to %d bytes", l.MaxMessageBytes))
	}
	if l.MaxRooms > 0 {
		parts = append(parts, fmt.Sprintf("%d rooms per user", l.MaxRooms))
	}
	if l.MaxContacts > 0 {
		parts = append(parts, fmt.Sprintf("%d contacts per user", l.MaxContacts))
	}
	if l.MaxRegistrations > 0 {
		parts = append(parts, fmt.Sprintf("%d registered users", l.MaxRegistrations))
	}
	if l.RegistrationAttempts > 0 {
		parts = append(parts, fmt.Sprintf("%d registration attempts per user", l.RegistrationAttempts))
	}
	if l.RegistrationWindow > 0 {
		parts = append(parts, fmt.Sprintf("registration window %v", l.RegistrationWindow))
	}
	return strings.Join(parts, ", ")
}
