package main

import (
	"fmt"
	"io"
	"strings"
)

// row is one line of the table: a figure for each gateway, their ratio and
// the target it is held to.
type row struct {
	Scenario   string  `json:"scenario"`
	Metric     string  `json:"metric"`
	Passerelle float64 `json:"passerelle"`
	Biboumi    float64 `json:"biboumi,omitempty"`
	HasBiboumi bool    `json:"has_biboumi"`
	Ratio      float64 `json:"ratio,omitempty"`
	Target     string  `json:"target,omitempty"`
	// Met is "yes", "NO", or "" when the figure has no target or no
	// biboumi figure to compare with.
	Met string `json:"met,omitempty"`
}

// target kinds.
const (
	noTarget = iota
	ratioAtMost
	ratioAtLeast
	absoluteBelow
	zero
)

type targetSpec struct {
	kind  int
	value float64
}

func (s targetSpec) String() string {
	switch s.kind {
	case ratioAtMost:
		return fmt.Sprintf("≤ %.1f×", s.value)
	case ratioAtLeast:
		return fmt.Sprintf("≥ %.1f×", s.value)
	case absoluteBelow:
		return fmt.Sprintf("< %g", s.value)
	case zero:
		return "0"
	}
	return ""
}

// table collects the rows.
type table struct{ rows []row }

func (tb *table) add(scenario, metric string, pass float64, bib *float64, spec targetSpec) {
	r := row{Scenario: scenario, Metric: metric, Passerelle: pass, Target: spec.String()}
	if bib != nil {
		r.Biboumi, r.HasBiboumi = *bib, true
		if *bib != 0 {
			r.Ratio = pass / *bib
		}
	}
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "NO"
	}
	switch spec.kind {
	case ratioAtMost:
		if r.HasBiboumi && r.Ratio > 0 {
			r.Met = met(r.Ratio <= spec.value)
		}
	case ratioAtLeast:
		if r.HasBiboumi && r.Ratio > 0 {
			r.Met = met(r.Ratio >= spec.value)
		}
	case absoluteBelow:
		r.Met = met(pass < spec.value)
	case zero:
		r.Met = met(pass == 0)
	}
	tb.rows = append(tb.rows, r)
}

// buildTable turns results into rows.
func buildTable(res *Results) *table {
	tb := &table{}
	bibOf := func(gw string, f func(string) (float64, bool)) *float64 {
		if v, ok := f(gw); ok {
			return &v
		}
		return nil
	}
	for _, dir := range []string{xmppToIRC, ircToXMPP} {
		get := func(gw string) (LatencyResult, bool) {
			for _, l := range res.Latency {
				if l.Gateway == gw && l.Direction == dir {
					return l, true
				}
			}
			return LatencyResult{}, false
		}
		p, ok := get("passerelle")
		if !ok {
			continue
		}
		b, hasB := get("biboumi")
		for _, m := range []struct {
			name string
			f    func(LatencyResult) float64
			spec targetSpec
		}{
			{"p50 ms", func(l LatencyResult) float64 { return l.P50 }, targetSpec{ratioAtMost, 0.8}},
			{"p90 ms", func(l LatencyResult) float64 { return l.P90 }, targetSpec{}},
			{"p99 ms", func(l LatencyResult) float64 { return l.P99 }, targetSpec{ratioAtMost, 0.8}},
			{"max ms", func(l LatencyResult) float64 { return l.Max }, targetSpec{}},
		} {
			bv := bibOf("biboumi", func(string) (float64, bool) { return m.f(b), hasB })
			tb.add("latency "+dir, m.name, m.f(p), bv, m.spec)
		}
		lost := float64(p.Lost)
		tb.add("latency "+dir, "lost", lost, bibOf("", func(string) (float64, bool) { return float64(b.Lost), hasB }), targetSpec{kind: zero})
	}
	for _, dir := range []string{xmppToIRC, ircToXMPP} {
		get := func(gw string) (ThroughputResult, bool) {
			for _, r := range res.Throughput {
				if r.Gateway == gw && r.Direction == dir {
					return r, true
				}
			}
			return ThroughputResult{}, false
		}
		p, ok := get("passerelle")
		if !ok {
			continue
		}
		b, hasB := get("biboumi")
		sc := fmt.Sprintf("throughput %s (%d)", dir, p.Sent)
		tb.add(sc, "messages/s", p.PerSecond, bibOf("", func(string) (float64, bool) { return b.PerSecond, hasB }), targetSpec{ratioAtLeast, 1.2})
		tb.add(sc, "lost", float64(p.Lost), bibOf("", func(string) (float64, bool) { return float64(b.Lost), hasB }), targetSpec{kind: zero})
		tb.add(sc, "reordered", float64(p.Reordered), bibOf("", func(string) (float64, bool) { return float64(b.Reordered), hasB }), targetSpec{kind: zero})
	}
	for _, p := range res.Scale {
		if p.Gateway != "passerelle" {
			continue
		}
		var b *ScaleResult
		for i := range res.Scale {
			if res.Scale[i].Gateway == "biboumi" && res.Scale[i].Users == p.Users {
				b = &res.Scale[i]
			}
		}
		get := func(f func(ScaleResult) float64) *float64 {
			if b == nil {
				return nil
			}
			v := f(*b)
			return &v
		}
		sc := fmt.Sprintf("scale %d users, channels of %d", p.Users, p.ChannelSize)
		tb.add(sc, "joined", float64(p.Joined), get(func(s ScaleResult) float64 { return float64(s.Joined) }), targetSpec{})
		tb.add(sc, "time to all joined ms", p.JoinMs, get(func(s ScaleResult) float64 { return s.JoinMs }), targetSpec{})
		tb.add(sc, "idle RSS KiB", float64(p.IdleKiB), get(func(s ScaleResult) float64 { return float64(s.IdleKiB) }), targetSpec{})
		tb.add(sc, "RSS KiB", float64(p.RSSKiB), get(func(s ScaleResult) float64 { return float64(s.RSSKiB) }), targetSpec{})
		spec := targetSpec{ratioAtMost, 1.0}
		if p.Users < 100 {
			spec = targetSpec{} // one user's share is within the noise of the RSS
		}
		tb.add(sc, "RSS per user KiB", p.PerUserKiB, get(func(s ScaleResult) float64 { return s.PerUserKiB }), spec)
	}
	for _, p := range res.Startup {
		if p.Gateway != "passerelle" {
			continue
		}
		var b *StartupResult
		for i := range res.Startup {
			if res.Startup[i].Gateway == "biboumi" {
				b = &res.Startup[i]
			}
		}
		get := func(f func(StartupResult) float64) *float64 {
			if b == nil {
				return nil
			}
			v := f(*b)
			return &v
		}
		sc := fmt.Sprintf("start-up, %d users", p.Users)
		tb.add(sc, "to online ms", p.OnlineMs, get(func(s StartupResult) float64 { return s.OnlineMs }), targetSpec{absoluteBelow, 1000})
		tb.add(sc, "RSS KiB online", float64(p.RSSKiB), get(func(s StartupResult) float64 { return float64(s.RSSKiB) }), targetSpec{})
		tb.add(sc, "RSS KiB 2 s later", float64(p.SettledKiB), get(func(s StartupResult) float64 { return float64(s.SettledKiB) }), targetSpec{})
	}
	return tb
}

// writeMarkdown prints the table and the micro-benchmarks as Markdown.
func writeMarkdown(w io.Writer, res *Results) {
	fmt.Fprintf(w, "Measured %s on %s (%d cores, %s, kernel %s, %s).\n\n", res.Date, res.Machine.Host, res.Machine.Cores, res.Machine.CPU, res.Machine.Kernel, res.Machine.Go)
	fmt.Fprintf(w, "Servers: %s. biboumi: %s.\n\n", strings.Join(res.Machine.Servers, ", "), res.Biboumi)
	fmt.Fprintln(w, "| scenario | metric | Passerelle | biboumi | P/b | target | met |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | --- | --- |")
	for _, r := range res.Table {
		b, ratio := "—", "—"
		if r.HasBiboumi {
			b = num(r.Biboumi)
			if r.Ratio > 0 {
				ratio = fmt.Sprintf("%.2f", r.Ratio)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Scenario, r.Metric, num(r.Passerelle), b, ratio, r.Target, r.Met)
	}
	if len(res.Micro) > 0 {
		fmt.Fprintln(w, "\nGo micro-benchmarks (Passerelle's hot paths; biboumi has no counterpart):")
		fmt.Fprintln(w, "\n| benchmark | ns/op | B/op | allocs/op |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
		for _, m := range res.Micro {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", m.Name, num(m.NsPerOp), num(m.BytesPerOp), num(m.AllocsPerOp))
		}
	}
	fmt.Fprintln(w, "\nFlood limits relaxed for the test, on both sides alike:")
	for _, r := range res.Relaxed {
		fmt.Fprintf(w, "- %s\n", r)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}

// num prints a figure with as many decimals as its size deserves.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
