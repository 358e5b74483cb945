package gateway_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports"
)

// TestLimits: a user's messages are refused, with a clear error, beyond the
// configured rate and size, and a transport with as many users as it allows
// refuses a new one; the metrics count what passed and what was refused.
func TestLimits(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, envOptions{
		limits:  transports.Limits{MessagesPerMinute: 1, Burst: 3, MaxMessageBytes: 100, MaxRegistrations: 1},
		metrics: gateway.NewMetrics(reg),
	})
	e.net.AddAccount("bob-legacy", "bob-pw")
	alice := e.aliceOnline()

	alice.SendRaw(t, `<message to='`+friend+`' id='big' type='chat'><body>`+strings.Repeat("x", 101)+`</body></message>`)
	if m := alice.Expect(t, wait, xmpptest.MessageFrom(friend)); m.ErrorCondition() != "not-acceptable" || !strings.Contains(m.Inner, "too long: 101 bytes, at most 100") {
		t.Errorf("a message over the size limit: %s", m)
	}
	for i := range 3 {
		alice.SendRaw(t, `<message to='`+friend+`' id='m`+string(rune('0'+i))+`' type='chat'><body>hi</body></message>`)
		if m := alice.Expect(t, wait, xmpptest.MessageFrom(friend)); m.Text("jabber:client", "body") != "echo: hi" {
			t.Fatalf("message %d within the burst: %s", i, m)
		}
	}
	alice.SendRaw(t, `<message to='`+friend+`' id='m3' type='chat'><body>one too many</body></message>`)
	m := alice.Expect(t, wait, xmpptest.MessageFrom(friend))
	if m.ErrorCondition() != "resource-constraint" || m.Type != "error" || !strings.Contains(m.Inner, "at most 1 a minute") {
		t.Errorf("a message over the rate: %s", m)
	}

	bob := e.client("bob")
	bob.SendRaw(t, `<presence/>`)
	res := bob.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='reg1'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "bob-legacy", "password": "bob-pw"})+`</query></iq>`)
	if res.Type != "error" || res.ErrorCondition() != "resource-constraint" {
		t.Errorf("a registration beyond max_registrations: %s", res)
	}
	// Alice, already registered, may still change her settings.
	res = alice.IQ(t, wait, `<iq type='set' to='`+gwDomain+`' id='reg2'><query xmlns='jabber:iq:register'>`+
		submitForm(map[string]string{"username": "alice-legacy", "password": "legacy-pw"})+`</query></iq>`)
	if res.Type != "result" {
		t.Errorf("a registered user's new settings at the limit: %s", res)
	}

	for name, want := range map[string]float64{
		`passerelle_messages_total{direction="to_legacy",transport="` + gwDomain + `"}`:   3,
		`passerelle_messages_total{direction="from_legacy",transport="` + gwDomain + `"}`: 3,
		`passerelle_limited_total{limit="rate",transport="` + gwDomain + `"}`:             1,
		`passerelle_limited_total{limit="size",transport="` + gwDomain + `"}`:             1,
		`passerelle_limited_total{limit="registrations",transport="` + gwDomain + `"}`:    1,
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(t, reg, `passerelle_legacy_logins_total{result="ok",transport="`+gwDomain+`"}`); got < 1 {
		t.Errorf("logins counted: %v", got)
	}
	if got := metricValue(t, reg, `passerelle_message_latency_seconds_count{direction="to_legacy",transport="`+gwDomain+`"}`); got != 3 {
		t.Errorf("latency observations to the network: %v, want 3", got)
	}
}

// metricValue reads one series, written as in the text exposition format,
// such as name{label="v"}; a missing series reads 0.
func metricValue(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}
