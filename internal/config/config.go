// Package config loads and validates Passerelle's TOML configuration. Every
// problem is reported with the key it concerns, all at once.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"passerelle.dev/passerelle/transports"
)

// Config is a validated configuration.
type Config struct {
	LogLevel  slog.Level
	LogFormat string
	// LogFile receives the logs, reopened on SIGHUP; empty means stderr.
	LogFile    string
	Metrics    Metrics
	XMPP       XMPP
	Database   Database
	Access     Access
	Transports []Transport
	// Path is the file the configuration was read from.
	Path string
}

// Bounds of xmpp.max_stanza_bytes. The default is well under the smallest
// default limit of the servers a stanza crosses: Prosody 0.12 closes a
// component stream on a stanza over 512 KiB and refuses client stanzas
// over 256 KiB; ejabberd 23.01 has no limit on its component listener but
// its packaged config sets 256 KiB (c2s) and 512 KiB (s2s). The minimum
// leaves room for a stanza's envelope and a useful start of its text
// (gateway.MinMaxStanzaBytes is the same).
const (
	DefaultMaxStanzaBytes = 64 << 10
	MinMaxStanzaBytes     = 4 << 10
	MaxMaxStanzaBytes     = 16 << 20
)

// XMPP is how the gateway reaches the XMPP server.
type XMPP struct {
	// Server is the component listener, host:port.
	Server                     string
	ReconnectMin, ReconnectMax time.Duration
	// PingInterval is the keep-alive period; zero disables it.
	PingInterval time.Duration
	// MaxStanzaBytes bounds every stanza the gateway writes, encoded.
	MaxStanzaBytes int
}

// Metrics says where the metrics and health endpoints listen.
type Metrics struct {
	// Listen is a host:port for /metrics and /healthz; empty disables them.
	Listen string
}

// Database locates the registry and its key.
type Database struct {
	Path    string
	KeyFile string
}

// Access says who may use the gateway.
type Access struct {
	// AllowDomains are XMPP domains whose users may use the gateway; "*"
	// allows all.
	AllowDomains []string
	// Admins are bare JIDs of gateway administrators.
	Admins []string
}

// Transport is one configured transport (one component domain).
type Transport struct {
	Kind   string
	Domain string
	Secret string
	Name   string
	// AllowDomains, if set, overrides Access.AllowDomains.
	AllowDomains []string
	// Limits bound each user's use of the transport; zero fields take the
	// transport's and the gateway's defaults.
	Limits transports.Limits
	// Options are the transport's own settings.
	Options Options
}

// file mirrors the TOML layout.
type file struct {
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`
	LogFile   string `toml:"log_file"`
	Metrics   struct {
		Listen string `toml:"listen"`
	} `toml:"metrics"`
	XMPP struct {
		Server         string    `toml:"server"`
		ReconnectMin   *Duration `toml:"reconnect_min"`
		ReconnectMax   *Duration `toml:"reconnect_max"`
		PingInterval   *Duration `toml:"ping_interval"`
		MaxStanzaBytes *int      `toml:"max_stanza_bytes"`
	} `toml:"xmpp"`
	Database struct {
		Path    string `toml:"path"`
		KeyFile string `toml:"key_file"`
	} `toml:"database"`
	Access struct {
		AllowDomains []string `toml:"allow_domains"`
		Admins       []string `toml:"admins"`
	} `toml:"access"`
	Transports []struct {
		Kind         string         `toml:"kind"`
		Domain       string         `toml:"domain"`
		Secret       string         `toml:"secret"`
		SecretFile   string         `toml:"secret_file"`
		Name         string         `toml:"name"`
		AllowDomains []string       `toml:"allow_domains"`
		Limits       limitsFile     `toml:"limits"`
		Options      map[string]any `toml:"options"`
	} `toml:"transport"`
}

// limitsFile mirrors a transport's [transport.limits] table.
type limitsFile struct {
	MessagesPerMinute float64 `toml:"messages_per_minute"`
	Burst             int     `toml:"burst"`
	MaxMessageBytes   int     `toml:"max_message_bytes"`
	MaxRooms          int     `toml:"max_rooms"`
	MaxContacts       int     `toml:"max_contacts"`
	MaxRegistrations  int     `toml:"max_registrations"`
	// RegistrationAttempts per user in RegistrationWindow.
	RegistrationAttempts int       `toml:"registration_attempts"`
	RegistrationWindow   *Duration `toml:"registration_window"`
}

// Duration is a TOML string such as "30s"; it is the transports' own type,
// so that the daemon's options and the transports' read alike.
type Duration = transports.Duration

// Load reads and validates the file at path. kinds are the transport kinds
// this binary knows.
func Load(path string, kinds []string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b, path, kinds)
}

// problems collects validation errors, each naming its key.
type problems struct {
	path string
	list []string
}

func (p *problems) add(key, format string, args ...any) {
	p.list = append(p.list, key+": "+fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d problem(s):\n  %s", p.path, len(p.list), strings.Join(p.list, "\n  "))
}

// Parse validates a configuration held in memory; path names it in errors.
func Parse(data []byte, path string, kinds []string) (*Config, error) {
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: line %d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p := &problems{path: path}
	for _, k := range md.Undecoded() {
		if len(k) >= 2 && k[0] == "transport" && k[1] == "options" {
			continue // checked by the transport through Options.Decode
		}
		p.add(k.String(), "unknown key")
	}
	c := &Config{Path: path}
	c.validateTop(p, &f)
	c.validateTransports(p, &f, kinds)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}
