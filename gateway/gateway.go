// Package gateway runs one transport as an XEP-0114 external component: it
// keeps the component connection up, routes stanzas between XMPP users and
// their legacy sessions, and serves the transport domain's own XEPs
// (disco, ping, version, in-band registration, jabber:iq:gateway).
//
// It owns the component connection (one reader goroutine), the routing
// table, and one loop per active user that owns all of that user's state
// (the legacy session, XMPP resources, contacts, rooms, command runs and
// messages held after a reconnection) and handles, in order, every event
// from both sides; see docs/architecture.md.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// Config configures one Gateway.
type Config struct {
	// Domain is the component domain, e.g. "irc.example.org".
	Domain string
	// Secret is the component's shared secret with the XMPP server.
	Secret string
	// Server is the XMPP server's component listener, host:port.
	Server string
	// Name is shown in service discovery; the transport's name by default.
	Name string
	// Transport is the legacy network.
	Transport transports.Transport
	// Store keeps registrations.
	Store registry.Store
	// Allowed reports whether users of an XMPP domain may use the gateway.
	// Nil allows every domain.
	Allowed func(domain string) bool
	// IsAdmin reports whether a bare JID may run the admin commands. Nil
	// means nobody may.
	IsAdmin func(bareJID string) bool
	// Logger receives the gateway's logs; slog.Default() if nil.
	Logger *slog.Logger
	// ReconnectMin and ReconnectMax bound the reconnection backoff.
	ReconnectMin, ReconnectMax time.Duration
	// PingInterval is how often the connection to the server is checked;
	// zero disables the check.
	PingInterval time.Duration
	// LegacyTimeout bounds each call into a legacy session (sending a
	// message, setting presence); 30s if zero.
	LegacyTimeout time.Duration
	// LoginRetry is the first wait before retrying a legacy login that
	// failed for a passing reason (30s if zero); it doubles up to 10 minutes.
	LoginRetry time.Duration
	// Version is reported through XEP-0092.
	Version string
	// Metrics receives the gateway's metrics; nil keeps them private.
	Metrics *Metrics
	// MaxStanzaBytes bounds every stanza the gateway writes, encoded:
	// longer texts are cut with a note, and what still does not fit is
	// dropped and the user told. DefaultMaxStanzaBytes if zero; at least
	// MinMaxStanzaBytes.
	MaxStanzaBytes int
	// Limits bound what each user may do; zero fields take the transport's
	// suggestion, then the gateway's defaults.
	Limits transports.Limits
	// QueueBytes bounds the stanzas waiting for one user's loop, in bytes
	// of memory (estimated); beyond it, and beyond 10,000 stanzas, the
	// user's stanzas are refused with resource-constraint. 16 MiB if zero.
	QueueBytes int
}

// Gateway serves one transport on one component domain.
type Gateway struct {
	cfg     Config
	metrics *gatewayMetrics
	started time.Time
	limits  transports.Limits
	// newRegistrations counts registrations of new users under way, for
	// the limit on registered users.
	newRegistrations atomic.Int32
	// attempts are the users' recent registration attempts, for their rate.
	attempts attempts
	cmds     []*command // the command set, see commands_set.go
	routes   []routeRow // what the gateway answers, see routes.go
	domain   jid.JID
	info     transports.Info
	log      *slog.Logger
	conn     *connection

	mu     sync.Mutex
	users  map[string]*user // by bare JID; guarded by mu
	closed bool             // no new users once shutting down; guarded by mu
	wg     sync.WaitGroup   // user loops
}

// New checks cfg and returns a Gateway ready to Run.
func New(cfg Config) (*Gateway, error) {
	domain, err := jid.Parse(cfg.Domain)
	if err != nil || domain.Localpart() != "" || domain.Resourcepart() != "" {
		return nil, fmt.Errorf("gateway: %q is not a component domain", cfg.Domain)
	}
	if cfg.Transport == nil || cfg.Store == nil {
		return nil, errors.New("gateway: a transport and a store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = time.Second
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = 60 * time.Second
	}
	if cfg.LegacyTimeout <= 0 {
		cfg.LegacyTimeout = 30 * time.Second
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = defaultQueueBytes
	}
	if cfg.LoginRetry <= 0 {
		cfg.LoginRetry = 30 * time.Second
	}
	switch {
	case cfg.MaxStanzaBytes == 0:
		cfg.MaxStanzaBytes = DefaultMaxStanzaBytes
	case cfg.MaxStanzaBytes < MinMaxStanzaBytes:
		return nil, fmt.Errorf("gateway: a stanza bound of %d bytes is under the minimum of %d", cfg.MaxStanzaBytes, MinMaxStanzaBytes)
	}
	info := cfg.Transport.Info()
	cfg.Limits = cfg.Limits.Or(info.Limits).Or(defaultLimits)
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if cfg.Name == "" {
		cfg.Name = info.Name
	}
	g := &Gateway{
		cfg:     cfg,
		domain:  domain,
		info:    info,
		started: time.Now(),
		limits:  cfg.Limits,
		cmds:    newCommandSet(),
		routes:  routeTable(),
		log:     cfg.Logger.With("transport", domain.String()),
		users:   make(map[string]*user),
	}
	g.metrics = cfg.Metrics.forGateway(g)
	g.conn = newConnection(g)
	return g, nil
}

// Domain returns the component domain.
func (g *Gateway) Domain() string { return g.domain.String() }

// Connected reports whether the component connection is up.
func (g *Gateway) Connected() bool { return g.conn.connected() }

// Run keeps the component connected until ctx is done, then shuts down
// gracefully: every user's legacy session is closed and users see the
// transport and their contacts go offline. It returns nil after a requested
// shutdown, or an error the gateway cannot recover from (such as a secret the
// server refuses).
func (g *Gateway) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	connCtx, stopConn := context.WithCancel(context.Background())
	defer stopConn()
	go func() { errc <- g.conn.run(connCtx) }()

	select {
	case err := <-errc:
		g.conn.closing.Store(true)
		g.shutdownUsers()
		return err
	case <-ctx.Done():
	}
	g.log.Info("shutting down")
	g.conn.closing.Store(true)
	g.shutdownUsers()
	stopConn()
	<-errc
	return nil
}

// shutdownUsers stops every user loop, giving each a bounded time to log out
// and tell its user.
func (g *Gateway) shutdownUsers() {
	g.mu.Lock()
	g.closed = true
	for _, u := range g.users {
		u.stop()
	}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		g.log.Warn("some users did not log out in time")
	}
}

// allowed reports whether users of the XMPP domain may use the gateway.
func (g *Gateway) allowed(domain string) bool {
	return g.cfg.Allowed == nil || g.cfg.Allowed(domain)
}
