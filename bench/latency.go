package main

import (
	"fmt"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// LatencyResult is one gateway's latency in one direction.
type LatencyResult struct {
	Gateway   string `json:"gateway"`
	Direction string `json:"direction"`
	Summary
	Lost int `json:"lost"`
}

// Directions.
const (
	xmppToIRC = "xmpp→irc"
	ircToXMPP = "irc→xmpp"
)

// runLatency sends n messages one at a time each way through each gateway,
// in blocks that alternate between the gateways (and, within a block,
// between the directions) so that machine noise hits both alike.
func runLatency(t tb.TB, pairs []*pair, n, blocks int) []LatencyResult {
	t.Helper()
	samples := map[string]map[string][]time.Duration{}
	lost := map[string]map[string]int{}
	for _, p := range pairs {
		samples[p.g.Name()] = map[string][]time.Duration{}
		lost[p.g.Name()] = map[string]int{}
		// Warm-up, not counted: first connections, first allocations.
		for i := range 10 {
			oneXMPPToIRC(t, p, fmt.Sprintf("warm-%d", i))
			oneIRCToXMPP(t, p, fmt.Sprintf("warm-%d", i))
		}
	}
	per := n / blocks
	seq := 0
	for b := range blocks {
		for _, p := range pairs {
			for range per {
				seq++
				name := p.g.Name()
				body := fmt.Sprintf("lat-%d-block-%d", seq, b)
				if d, ok := oneXMPPToIRC(t, p, body); ok {
					samples[name][xmppToIRC] = append(samples[name][xmppToIRC], d)
				} else {
					lost[name][xmppToIRC]++
				}
				if d, ok := oneIRCToXMPP(t, p, body); ok {
					samples[name][ircToXMPP] = append(samples[name][ircToXMPP], d)
				} else {
					lost[name][ircToXMPP]++
				}
			}
		}
	}
	var out []LatencyResult
	for _, p := range pairs {
		for _, dir := range []string{xmppToIRC, ircToXMPP} {
			name := p.g.Name()
			out = append(out, LatencyResult{Gateway: name, Direction: dir, Summary: summarize(samples[name][dir]), Lost: lost[name][dir]})
		}
	}
	return out
}

// latencyWait bounds the wait for one message.
const latencyWait = 10 * time.Second

// oneXMPPToIRC sends body from the XMPP user and times it until the IRC
// user reads it.
func oneXMPPToIRC(t tb.TB, p *pair, body string) (time.Duration, bool) {
	start := time.Now()
	p.sendXMPP(t, body, body)
	deadline := start.Add(latencyWait)
	for {
		m, err := p.irc.Receive(time.Until(deadline))
		if err != nil {
			t.Logf("%s: %s lost on the way to IRC: %v", p.g.Name(), body, err)
			return 0, false
		}
		if p.isFromXMPP(m) && m.Params[1] == body {
			return time.Since(start), true
		}
	}
}

// oneIRCToXMPP sends body from the IRC user and times it until the XMPP
// client has read the stanza.
func oneIRCToXMPP(t tb.TB, p *pair, body string) (time.Duration, bool) {
	start := time.Now()
	p.irc.Send("PRIVMSG " + p.channel + " :" + body)
	timeout := time.After(latencyWait)
	for {
		select {
		case a := <-p.received:
			if a.body == body {
				return a.at.Sub(start), true
			}
		case <-timeout:
			t.Logf("%s: %s lost on the way to XMPP", p.g.Name(), body)
			return 0, false
		}
	}
}
