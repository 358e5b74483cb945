package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// ThroughputResult is one burst through one gateway in one direction.
type ThroughputResult struct {
	Gateway   string `json:"gateway"`
	Direction string `json:"direction"`
	Sent      int    `json:"sent"`
	Delivered int    `json:"delivered"`
	// Lost counts messages that never arrived (refused ones included);
	// Reordered counts arrivals after a later message.
	Lost    int `json:"lost"`
	Refused int `json:"refused"`
	// Refusals counts the refused messages by error condition.
	Refusals  map[string]int `json:"refusals,omitempty"`
	Reordered int            `json:"reordered"`
	// PerSecond is deliveries per second, from the first send to the last
	// arrival.
	PerSecond  float64 `json:"per_second"`
	SendMillis float64 `json:"send_ms"`
	TotalMs    float64 `json:"total_ms"`
	// CPUMs is the CPU time each process used during the burst: the
	// gateway, Prosody and ngircd.
	CPUMs map[string]float64 `json:"cpu_ms"`
}

// burstStall ends a burst when nothing arrives for this long.
const burstStall = 20 * time.Second

// runThroughput sends a burst of n messages each way through each gateway:
// A then B from XMPP, B then A from IRC.
func runThroughput(t tb.TB, e *env, pairs []*pair, n int) []ThroughputResult {
	t.Helper()
	var out []ThroughputResult
	measure := func(p *pair, burst func(tb.TB, *pair, int) ThroughputResult) {
		m := newCPUMeter(map[string]int{"gateway": p.g.PID(), "prosody": e.xmpp.PID(), "ngircd": e.irc.PID()})
		r := burst(t, p, n)
		r.CPUMs = m.used()
		out = append(out, r)
	}
	for _, p := range pairs {
		measure(p, burstXMPPToIRC)
	}
	for i := len(pairs) - 1; i >= 0; i-- {
		measure(pairs[i], burstIRCToXMPP)
	}
	return out
}

// tally checks arrivals for loss and order.
type tally struct {
	n         int
	seen      []bool
	delivered int
	reordered int
	highest   int
	last      time.Time
}

func newTally(n int) *tally { return &tally{n: n, seen: make([]bool, n), highest: -1} }

// arrive records the message with text "tp-<seq>" that arrived at at.
func (c *tally) arrive(text string, at time.Time) {
	num, ok := strings.CutPrefix(text, "tp-")
	if !ok {
		return
	}
	seq, err := strconv.Atoi(num)
	if err != nil || seq < 0 || seq >= c.n || c.seen[seq] {
		return
	}
	c.seen[seq] = true
	c.delivered++
	if seq < c.highest {
		c.reordered++
	}
	c.highest = max(c.highest, seq)
	c.last = at
}

func (c *tally) result(p *pair, dir string, start, sent time.Time, refused int) ThroughputResult {
	r := ThroughputResult{
		Gateway: p.g.Name(), Direction: dir, Sent: c.n, Delivered: c.delivered,
		Lost: c.n - c.delivered, Refused: refused, Reordered: c.reordered,
		SendMillis: ms(sent.Sub(start)),
	}
	if c.delivered > 0 {
		r.TotalMs = ms(c.last.Sub(start))
		r.PerSecond = float64(c.delivered) / c.last.Sub(start).Seconds()
	}
	return r
}

func burstXMPPToIRC(t tb.TB, p *pair, n int) ThroughputResult {
	t.Helper()
	drain(p)
	c := newTally(n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c.delivered < n {
			m, err := p.irc.Receive(burstStall)
			if err != nil {
				t.Logf("%s: burst to IRC: %v", p.g.Name(), err)
				return
			}
			if p.isFromXMPP(m) {
				c.arrive(m.Params[1], time.Now())
			}
		}
	}()
	start := time.Now()
	for i := range n {
		body := fmt.Sprintf("tp-%d", i)
		p.sendXMPP(t, body, body)
	}
	sent := time.Now()
	<-done
	r := c.result(p, xmppToIRC, start, sent, len(p.rejected))
	for len(p.rejected) > 0 {
		if r.Refusals == nil {
			r.Refusals = map[string]int{}
		}
		r.Refusals[<-p.rejected]++
	}
	return r
}

func burstIRCToXMPP(t tb.TB, p *pair, n int) ThroughputResult {
	t.Helper()
	drain(p)
	c := newTally(n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c.delivered < n {
			select {
			case a := <-p.received:
				c.arrive(a.body, a.at)
			case <-time.After(burstStall):
				t.Logf("%s: burst to XMPP: nothing for %v after %d", p.g.Name(), burstStall, c.delivered)
				return
			}
		}
	}()
	start := time.Now()
	for i := range n {
		p.irc.Send(fmt.Sprintf("PRIVMSG %s :tp-%d", p.channel, i))
	}
	sent := time.Now()
	<-done
	return c.result(p, ircToXMPP, start, sent, 0)
}

// drain empties what an earlier scenario left behind.
func drain(p *pair) {
	for {
		select {
		case <-p.received:
		case <-p.rejected:
		default:
			for {
				if _, err := p.irc.Receive(50 * time.Millisecond); err != nil {
					return
				}
			}
		}
	}
}
