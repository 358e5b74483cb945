package main

import (
	"fmt"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// StartupResult is one gateway's start-up with many registered users.
type StartupResult struct {
	Gateway string `json:"gateway"`
	Users   int    `json:"users"`
	Runs    int    `json:"runs"`
	// OnlineMs is the median time from the process start to the component
	// answering disco#info; OnlineRuns has every run.
	OnlineMs   float64   `json:"online_ms"`
	OnlineRuns []float64 `json:"online_runs_ms"`
	// RSSKiB is the median RSS once online, SettledKiB 2 s later (after
	// Passerelle's presence probes to every registered user).
	RSSKiB     int64 `json:"rss_kib"`
	SettledKiB int64 `json:"settled_rss_kib"`
}

// runStartup starts each gateway runs times, alternating, on a database
// with users registered (Passerelle) or configured and in the roster
// (biboumi).
func runStartup(t tb.TB, e *env, gws []gateway, users, runs int) []StartupResult {
	t.Helper()
	jids := make([]string, users)
	for i := range jids {
		jids[i] = fmt.Sprintf("r%05d@%s", i+1, xmppDomain)
	}
	dbs := map[string]string{}
	for _, g := range gws {
		start := time.Now()
		dbs[g.Name()] = g.Prepare(t, jids)
		t.Logf("startup: %s database with %d users written in %v", g.Name(), users, time.Since(start).Round(time.Millisecond))
	}
	online := map[string][]float64{}
	rss := map[string][]float64{}
	settled := map[string][]float64{}
	for r := range runs {
		order := gws
		if r%2 == 1 {
			order = reversed(gws)
		}
		for _, g := range order {
			g.Start(t, dbs[g.Name()])
			d := e.waitOnline(t, g.Domain(), g.Started(), 60*time.Second)
			m1, err := readMemory(g.PID())
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			m2, err := readMemory(g.PID())
			if err != nil {
				t.Fatal(err)
			}
			g.Stop()
			online[g.Name()] = append(online[g.Name()], ms(d))
			rss[g.Name()] = append(rss[g.Name()], float64(m1.RSS))
			settled[g.Name()] = append(settled[g.Name()], float64(m2.RSS))
			t.Logf("startup: %s online in %v, RSS %d KiB, %d KiB 2 s later", g.Name(), d.Round(time.Millisecond), m1.RSS, m2.RSS)
		}
	}
	var out []StartupResult
	for _, g := range gws {
		n := g.Name()
		out = append(out, StartupResult{
			Gateway: n, Users: users, Runs: runs,
			OnlineMs: median(online[n]), OnlineRuns: online[n],
			RSSKiB: int64(median(rss[n])), SettledKiB: int64(median(settled[n])),
		})
	}
	return out
}
