// Package irc is the IRC transport: each user gets one IRC connection per
// network they use, channels become multi-user chat rooms and private
// messages become chats.
//
// One session goroutine per user owns that user's connections, channels and
// members, and handles in order the gateway's commands and every line read
// (and bounded) by the wire layer; see docs/transports.md.
package irc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/netguard"
)

// Config is the transport's part of the gateway configuration.
type Config struct {
	// DefaultNetwork, if set, is the network of addresses without one:
	// "#chan" and "nick".
	DefaultNetwork string `toml:"default_network"`
	// Networks holds per-network connection settings, by network name.
	Networks map[string]NetworkConfig `toml:"networks"`
	// AnyNetwork lets users reach networks that are not listed, with TLS on
	// port 6697. Their addresses must be public: loopback, private,
	// link-local and other special ranges are refused unless listed in
	// AllowAddresses.
	AnyNetwork bool `toml:"any_network"`
	// AllowAddresses lists addresses and ranges ("10.1.2.3",
	// "10.0.0.0/8") that networks reached through any_network may have
	// although they are not public. Listed networks are trusted as they
	// are.
	AllowAddresses []string `toml:"allow_addresses"`
	// MaxChannelMembers bounds the members listed for one channel
	// (default 5000); the others are not shown, and the user is told.
	MaxChannelMembers int `toml:"max_channel_members"`
	// NickSuffix is appended to a nickname taken at connection time (default
	// "_").
	NickSuffix string `toml:"nick_suffix"`
	// Realname is the default real name (default "Passerelle user").
	Realname string `toml:"realname"`
	// LinesPerSecond and Burst bound what one connection sends (defaults 2
	// and 10), so that no user gets the gateway banned for flooding.
	LinesPerSecond float64 `toml:"lines_per_second"`
	Burst          int     `toml:"burst"`
	// ReconnectMin and ReconnectMax bound the wait between reconnection
	// attempts (defaults 2s and 5m).
	ReconnectMin transports.Duration `toml:"reconnect_min"`
	ReconnectMax transports.Duration `toml:"reconnect_max"`
	// PresenceInterval is how often contacts' presence is polled with ISON
	// on servers without MONITOR (default 60s).
	PresenceInterval transports.Duration `toml:"presence_interval"`
}

// NetworkConfig is how to reach one network.
type NetworkConfig struct {
	Host string `toml:"host"` // default: the network name
	Port int    `toml:"port"` // default: 6697 with TLS, 6667 without
	// TLS is on unless set to false.
	TLS *bool `toml:"tls"`
	// CAFile adds certificate authorities to verify the server with.
	CAFile string `toml:"ca_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `toml:"server_name"`
	// AllowPlaintextSASL lets a SASL password go to this network over a
	// connection without TLS; by default it is not sent, and the user is
	// not connected.
	AllowPlaintextSASL bool `toml:"allow_plaintext_sasl"`

	tlsConfig *tls.Config
}

// Transport is the IRC transport.
type Transport struct {
	cfg   Config
	log   *slog.Logger
	guard netguard.Policy // for networks reached through any_network
}

// New checks cfg and returns the transport.
func New(cfg Config, log *slog.Logger) (*Transport, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg.DefaultNetwork = strings.ToLower(cfg.DefaultNetwork)
	if cfg.DefaultNetwork != "" && !validNetwork(cfg.DefaultNetwork) {
		return nil, fmt.Errorf("irc: default_network %q is not a network name", cfg.DefaultNetwork)
	}
	nets := make(map[string]NetworkConfig, len(cfg.Networks))
	for name, n := range cfg.Networks {
		name = strings.ToLower(name)
		if !validNetwork(name) {
			return nil, fmt.Errorf("irc: networks: %q is not a network name", name)
		}
		if err := n.prepare(name); err != nil {
			return nil, fmt.Errorf("irc: network %s: %w", name, err)
		}
		nets[name] = n
	}
	cfg.Networks = nets
	if cfg.DefaultNetwork != "" && !cfg.AnyNetwork {
		if _, ok := nets[cfg.DefaultNetwork]; !ok {
			return nil, fmt.Errorf("irc: default_network %s is not among the networks", cfg.DefaultNetwork)
		}
	}
	if len(nets) == 0 && !cfg.AnyNetwork {
		return nil, fmt.Errorf("irc: no networks: list some under networks, or set any_network")
	}
	if cfg.NickSuffix == "" {
		cfg.NickSuffix = "_"
	}
	if cfg.Realname == "" {
		cfg.Realname = "Passerelle user"
	}
	if cfg.LinesPerSecond <= 0 {
		cfg.LinesPerSecond = 2
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.ReconnectMin.Duration <= 0 {
		cfg.ReconnectMin.Duration = 2 * time.Second
	}
	if cfg.ReconnectMax.Duration < cfg.ReconnectMin.Duration {
		cfg.ReconnectMax.Duration = max(5*time.Minute, cfg.ReconnectMin.Duration)
	}
	if cfg.PresenceInterval.Duration <= 0 {
		cfg.PresenceInterval.Duration = time.Minute
	}
	if cfg.MaxChannelMembers <= 0 {
		cfg.MaxChannelMembers = defaultMaxMembers
	}
	allow, err := netguard.ParsePrefixes(cfg.AllowAddresses)
	if err != nil {
		return nil, fmt.Errorf("irc: allow_addresses: %w", err)
	}
	return &Transport{cfg: cfg, log: log, guard: netguard.Policy{Allow: allow}}, nil
}

func (n *NetworkConfig) prepare(name string) error {
	if n.Host == "" {
		n.Host = name
	}
	if n.TLS == nil {
		on := true
		n.TLS = &on
	}
	if n.Port == 0 {
		n.Port = 6667
		if *n.TLS {
			n.Port = 6697
		}
	}
	if !*n.TLS {
		return nil
	}
	n.tlsConfig = &tls.Config{ServerName: n.Host, MinVersion: tls.VersionTLS12}
	if n.ServerName != "" {
		n.tlsConfig.ServerName = n.ServerName
	}
	if n.CAFile != "" {
		pem, err := os.ReadFile(n.CAFile)
		if err != nil {
			return fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ca_file %s: no certificates", n.CAFile)
		}
		n.tlsConfig.RootCAs = pool
	}
	return nil
}

// network returns how to reach a network.
func (t *Transport) network(name string) NetworkConfig {
	if n, ok := t.cfg.Networks[name]; ok {
		return n
	}
	var n NetworkConfig
	_ = n.prepare(name) // no CA file: cannot fail
	return n
}

// listed reports whether the admin configured the network.
func (t *Transport) listed(name string) bool {
	_, ok := t.cfg.Networks[name]
	return ok
}

func (t *Transport) networkAllowed(name string) bool {
	_, ok := t.cfg.Networks[name]
	return ok || t.cfg.AnyNetwork
}

// Info implements transports.Transport.
func (t *Transport) Info() transports.Info {
	return transports.Info{
		Type:         "irc",
		Name:         "IRC",
		Instructions: "Choose the nickname you will have on IRC. Give a password only if your nickname is registered with the network's services (SASL).",
		Fields: []transports.Field{
			{Name: fieldNick, Label: "Nickname", Kind: transports.Text, Required: true},
			{Name: fieldPassword, Label: "SASL password (optional)", Kind: transports.Secret, BoundTo: []string{fieldSASLNetwork}},
			{Name: fieldSASLNetwork, Label: "Network of the SASL password", Desc: "The only network the password is sent to" + t.saslNetworkHint() + ". Changing it drops the stored password: enter it again.", Kind: transports.Text},
			{Name: fieldUsername, Label: "Username (optional)", Desc: "The IRC user name and SASL account; defaults to the nickname.", Kind: transports.Text},
			{Name: fieldRealname, Label: "Real name (optional)", Kind: transports.Text, Default: t.cfg.Realname},
			{Name: transports.FieldKeepRooms, Label: "Stay in rooms while offline", Desc: "Keep your channels joined on IRC while you are offline in XMPP, as a bouncer does.", Kind: transports.Bool, Default: "false"},
			{Name: fieldNetworkNicks, Label: "Nicknames per network (optional)", Desc: "Space-separated network=nickname pairs, such as irc.libera.chat=alice.", Kind: transports.Text},
		},
		AddressPrompt: "IRC nickname or channel, with its network",
		AddressDesc:   "Write nick@network or #channel@network, such as #go@irc.libera.chat.",
		// Chat speed, but a long paste splits into many lines: 8 KiB is
		// about twenty of them, which the paced queue spreads out.
		Limits: transports.Limits{MessagesPerMinute: 120, Burst: 20, MaxMessageBytes: 8 << 10},
	}
}

// Registration field names.
const (
	fieldNick         = "nick"
	fieldPassword     = "password"
	fieldUsername     = "username"
	fieldRealname     = "realname"
	fieldNetworkNicks = "network_nicks"
	fieldSASLNetwork  = "sasl_network"
)

// ParseAddress implements transports.Transport.
func (t *Transport) ParseAddress(addr string) (string, error) {
	a, err := t.parseAddress(addr)
	if err != nil {
		return "", err
	}
	return t.format(a), nil
}

// IsRoom implements transports.RoomTransport.
func (t *Transport) IsRoom(addr string) bool {
	a, err := t.parseAddress(addr)
	return err == nil && isChannel(a.target, defaultChanTypes)
}

// Scope implements transports.Scoper: the network of an address.
func (t *Transport) Scope(addr string) string {
	a, err := t.parseAddress(addr)
	if err != nil {
		return ""
	}
	return a.network
}

// Register implements transports.Transport. IRC has no account to prove
// before a network is used: the values are checked, and a SASL password is
// tried at the first connection.
func (t *Transport) Register(_ context.Context, req transports.RegisterRequest) (transports.Values, error) {
	v := transports.Values{}
	for k, val := range req.Values {
		v[k] = strings.TrimSpace(val)
	}
	if !validNick(v[fieldNick]) {
		return nil, transports.Errorf(transports.BadRequest, "%q is not a valid IRC nickname", v[fieldNick])
	}
	if u := v[fieldUsername]; u != "" && !validUser(u) {
		return nil, transports.Errorf(transports.BadRequest, "%q is not a valid IRC user name", u)
	}
	if strings.ContainsAny(v[fieldRealname]+v[fieldPassword], "\r\n\x00") {
		return nil, transports.Errorf(transports.BadRequest, "line breaks are not allowed")
	}
	if _, err := t.networkNicks(v[fieldNetworkNicks]); err != nil {
		return nil, err
	}
	if err := t.bindSASL(v, req.Previous); err != nil {
		return nil, err
	}
	return v, nil
}

// networkNicks parses "network=nick" pairs.
func (t *Transport) networkNicks(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Fields(s) {
		net, nick, ok := strings.Cut(pair, "=")
		net = strings.ToLower(net)
		if !ok || !validNetwork(net) || !validNick(nick) {
			return nil, transports.Errorf(transports.BadRequest, "%q is not of the form network=nickname", pair)
		}
		out[net] = nick
	}
	return out, nil
}

func validUser(u string) bool {
	return len(u) <= 64 && !strings.ContainsAny(u, " @\r\n\x00") && u != ""
}

// Login implements transports.Transport. It connects to nothing yet: a
// network is connected when the user first needs it.
func (t *Transport) Login(_ context.Context, req transports.LoginRequest) (transports.Session, error) {
	nicks, err := t.networkNicks(req.Values[fieldNetworkNicks])
	if err != nil {
		return nil, err
	}
	log := req.Logger
	if log == nil {
		log = t.log
	}
	s := newSession(t, req, nicks, log)
	go s.run()
	return s, nil
}
