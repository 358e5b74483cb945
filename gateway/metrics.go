package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the Prometheus metrics of every gateway in a process, each
// series labelled with its transport's component domain. Build one with
// NewMetrics and pass it to each Gateway through Config.Metrics.
type Metrics struct {
	reg        prometheus.Registerer
	messages   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	errors     *prometheus.CounterVec
	reconnects *prometheus.CounterVec
	logins     *prometheus.CounterVec
	limited    *prometheus.CounterVec
}

// Message directions, the "direction" label.
const (
	toLegacy   = "to_legacy"
	fromLegacy = "from_legacy"
)

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passerelle_messages_total",
			Help: "Messages carried, by transport and direction (to_legacy, from_legacy).",
		}, []string{"transport", "direction"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "passerelle_message_latency_seconds",
			Help:    "Time a message spends in the gateway: from the stanza read to the legacy send returning (to_legacy), or from the legacy event to the stanza written (from_legacy).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"transport", "direction"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passerelle_stanza_errors_total",
			Help: "Error stanzas sent to users, by transport and XMPP error condition.",
		}, []string{"transport", "condition"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passerelle_reconnects_total",
			Help: "Reconnections, by transport and side: xmpp (the component connection) or legacy (a user's session to the network).",
		}, []string{"transport", "side"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passerelle_legacy_logins_total",
			Help: "Logins to the legacy network, by transport and result (ok, failed).",
		}, []string{"transport", "result"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passerelle_limited_total",
			Help: "Requests refused by a limit, by transport and limit (rate, size, rooms, contacts, registrations).",
		}, []string{"transport", "limit"}),
	}
	reg.MustRegister(m.messages, m.latency, m.errors, m.reconnects, m.logins, m.limited)
	return m
}

// gatewayMetrics are one gateway's series.
type gatewayMetrics struct {
	m                    *Metrics
	domain               string
	toLegacy, fromLegacy prometheus.Counter
	toLatency, fromLat   prometheus.Observer
}

// forGateway registers g's gauges and returns its series.
func (m *Metrics) forGateway(g *Gateway) *gatewayMetrics {
	d := g.cfg.Domain
	labels := prometheus.Labels{"transport": d}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "passerelle_component_connected", Help: "1 when the transport's component connection to the XMPP server is up.", ConstLabels: labels,
		}, func() float64 { return boolFloat(g.Connected()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "passerelle_users_logged_in", Help: "Users whose legacy session is connected.", ConstLabels: labels,
		}, func() float64 { _, n := g.userCounts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "passerelle_users_active", Help: "Users the gateway is serving (online, or kept logged in).", ConstLabels: labels,
		}, func() float64 { n, _ := g.userCounts(); return float64(n) }),
	)
	return &gatewayMetrics{
		m:          m,
		domain:     d,
		toLegacy:   m.messages.WithLabelValues(d, toLegacy),
		fromLegacy: m.messages.WithLabelValues(d, fromLegacy),
		toLatency:  m.latency.WithLabelValues(d, toLegacy),
		fromLat:    m.latency.WithLabelValues(d, fromLegacy),
	}
}

// sent counts a message handed to the legacy network, read at t.
func (gm *gatewayMetrics) sent(t time.Time) {
	gm.toLegacy.Inc()
	gm.toLatency.Observe(time.Since(t).Seconds())
}

// delivered counts a message from the legacy network, received at t.
func (gm *gatewayMetrics) delivered(t time.Time) {
	gm.fromLegacy.Inc()
	gm.fromLat.Observe(time.Since(t).Seconds())
}

func (gm *gatewayMetrics) stanzaError(condition string) {
	gm.m.errors.WithLabelValues(gm.domain, condition).Inc()
}

func (gm *gatewayMetrics) reconnect(side string) {
	gm.m.reconnects.WithLabelValues(gm.domain, side).Inc()
}

func (gm *gatewayMetrics) login(ok bool) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	gm.m.logins.WithLabelValues(gm.domain, result).Inc()
}

// limit counts something a limit refused, cut or dropped; a Gateway built
// without metrics (a unit test's) counts nothing.
func (gm *gatewayMetrics) limit(name string) {
	if gm == nil {
		return
	}
	gm.m.limited.WithLabelValues(gm.domain, name).Inc()
}

// counts returns the messages carried each way, for the admin statistics.
func (gm *gatewayMetrics) counts() (to, from int64) {
	return counterValue(gm.toLegacy), counterValue(gm.fromLegacy)
}

func counterValue(c prometheus.Counter) int64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	return int64(d.GetCounter().GetValue())
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// userCounts returns how many users the gateway serves and how many of them
// have a connected legacy session.
func (g *Gateway) userCounts() (active, loggedIn int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range g.users {
		active++
		if s := u.snap.Load(); s != nil && s.connected {
			loggedIn++
		}
	}
	return active, loggedIn
}
