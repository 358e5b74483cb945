package main

import (
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/internal/testserver"
)

// TestQuickScenarios runs the -quick scenarios against Passerelle, and
// against biboumi too when it is installed. It checks that nothing is lost
// or reordered and that the figures are sane; it asserts no timing.
func TestQuickScenarios(t *testing.T) {
	testserver.Require(t, "prosody", "prosody")
	testserver.Require(t, "ngircd", "ngircd")
	gateways := []string{"passerelle"}
	if biboumiMissing() == "" {
		gateways = append(gateways, "biboumi")
	} else {
		t.Logf("biboumi not measured: %s", biboumiMissing())
	}
	o := newOptions(true, gateways, []string{"latency", "throughput", "scale", "startup"})
	o.channelSize = 10
	p := &tb.Program{}
	res := run(p, o)
	p.Close()
	if len(res.Failed) > 0 {
		t.Fatalf("failed scenarios: %v (their errors are above)", res.Failed)
	}
	if len(res.Latency) != 2*len(gateways) || len(res.Throughput) != 2*len(gateways) ||
		len(res.Scale) != len(o.scaleUsers)*len(gateways) || len(res.Startup) != len(gateways) {
		t.Fatalf("missing results: %+v", res)
	}
	for _, l := range res.Latency {
		if l.Lost > 0 || l.Count != o.latencyMessages || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
			t.Errorf("latency %s %s: %+v", l.Gateway, l.Direction, l)
		}
	}
	for _, r := range res.Throughput {
		if r.Lost > 0 || r.Reordered > 0 || r.Delivered != o.burst || r.PerSecond <= 0 {
			t.Errorf("throughput %s %s: %+v", r.Gateway, r.Direction, r)
		}
	}
	for _, s := range res.Scale {
		if s.Joined != s.Users || s.IdleKiB <= 0 || s.RSSKiB <= 0 || s.JoinMs <= 0 {
			t.Errorf("scale %s %d: %+v", s.Gateway, s.Users, s)
		}
	}
	for _, s := range res.Startup {
		if s.OnlineMs <= 0 || s.RSSKiB <= 0 || s.Users != o.startupUsers {
			t.Errorf("startup %s: %+v", s.Gateway, s)
		}
	}
	if len(buildTable(res).rows) == 0 {
		t.Error("empty table")
	}
}

// TestParseBench reads go test -bench output.
func TestParseBench(t *testing.T) {
	out := "goos: linux\npkg: passerelle.dev/passerelle/address\nBenchmarkEncode-2   \t     100\t       188.0 ns/op\t     103 B/op\t       1 allocs/op\npkg: passerelle.dev/passerelle/transports/irc\nBenchmarkStanzaToLine/chat-2 100 19043 ns/op 2105 B/op 32 allocs/op\nPASS\n"
	got := parseBench(out)
	want := []MicroResult{{"address.Encode", 188, 103, 1}, {"irc.StanzaToLine/chat", 19043, 2105, 32}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %+v, want %+v", got[i], want[i])
		}
	}
}

// TestSummarize checks the nearest-rank percentiles.
func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	if s.P50 != 50 || s.P90 != 90 || s.P99 != 99 || s.Max != 100 || s.Count != 100 {
		t.Errorf("summary: %+v", s)
	}
}
