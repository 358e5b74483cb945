package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// ScaleResult is one gateway with n users joined to channels of at most
// ChannelSize users.
type ScaleResult struct {
	Gateway     string `json:"gateway"`
	Users       int    `json:"users"`
	ChannelSize int    `json:"channel_size"`
	Joined      int    `json:"joined"`
	// JoinMs is the time from the first join to the last self-presence.
	JoinMs float64 `json:"join_ms"`
	// IdleKiB is the gateway's RSS before the joins (Passerelle has
	// already logged in the registered users who are online), RSSKiB after
	// them (2 s later), PeakKiB its high-water mark.
	IdleKiB int64 `json:"idle_rss_kib"`
	RSSKiB  int64 `json:"rss_kib"`
	PeakKiB int64 `json:"peak_rss_kib"`
	// EmptyKiB is the gateway's smallest idle RSS over the counts: the
	// process with (almost) nobody. PerUserKiB is (RSSKiB − EmptyKiB) /
	// Users, everything the users cost.
	EmptyKiB   int64   `json:"empty_rss_kib"`
	PerUserKiB float64 `json:"per_user_kib"`
}

// joinInFlight bounds the joins under way at once: each opens an IRC
// connection, and ngircd's listen backlog is 10.
const joinInFlight = 8

// scaleUser is a logged-in account for the scale scenario; its filter
// keeps nothing and reports the outcome of its joins.
type scaleUser struct {
	name   string
	c      *xmpptest.Client
	joined chan bool
}

// scaleUsers logs in n accounts named u0001…; their reader drops the
// occupant presences (n² of them), keeping only each join's outcome.
func scaleUsers(t tb.TB, e *env, n int) []*scaleUser {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = userName(i)
	}
	clients := e.dialMany(t, names)
	out := make([]*scaleUser, n)
	for i, c := range clients {
		u := &scaleUser{name: names[i], c: c, joined: make(chan bool, 4)}
		c.Filter(func(s *xmpptest.Stanza) bool {
			if s.XMLName.Local == "presence" && strings.Contains(s.From, "#") {
				switch {
				case isSelfPresence(s):
					u.joined <- true
				case s.Type == "error":
					u.joined <- false
				}
			}
			return false
		})
		out[i] = u
	}
	return out
}

func userName(i int) string { return fmt.Sprintf("u%04d", i+1) }

func userJIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = userName(i) + "@" + xmppDomain
	}
	return out
}

// runScale starts each gateway fresh for each count, joins that many users
// to channels of channelSize users (0: all in one), and measures the time
// and the memory. In one channel of n users, every join is announced to
// every member: n² presences, and n² member entries in each gateway.
func runScale(t tb.TB, e *env, gws []gateway, counts []int, channelSize int, users []*scaleUser) []ScaleResult {
	t.Helper()
	var out []ScaleResult
	for i, n := range counts {
		order := gws
		if i%2 == 1 {
			order = reversed(gws)
		}
		for _, g := range order {
			out = append(out, scaleOnce(t, e, g, users[:n], channelSize))
		}
	}
	empty := map[string]int64{}
	for _, r := range out {
		if v, ok := empty[r.Gateway]; !ok || r.IdleKiB < v {
			empty[r.Gateway] = r.IdleKiB
		}
	}
	for i := range out {
		r := &out[i]
		r.EmptyKiB = empty[r.Gateway]
		r.PerUserKiB = float64(r.RSSKiB-r.EmptyKiB) / float64(r.Users)
	}
	return out
}

func reversed(gws []gateway) []gateway {
	out := make([]gateway, len(gws))
	for i, g := range gws {
		out[len(gws)-1-i] = g
	}
	return out
}

func scaleOnce(t tb.TB, e *env, g gateway, users []*scaleUser, channelSize int) ScaleResult {
	t.Helper()
	n := len(users)
	if channelSize <= 0 {
		channelSize = n
	}
	db := g.Prepare(t, userJIDs(n))
	g.Start(t, db)
	defer g.Stop()
	e.waitOnline(t, g.Domain(), g.Started(), 30*time.Second)
	time.Sleep(time.Second)
	idle, err := readMemory(g.PID())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		for len(u.joined) > 0 {
			<-u.joined
		}
	}
	var joined sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	sem := make(chan struct{}, joinInFlight)
	start := time.Now()
	for i, u := range users {
		room := g.Room(fmt.Sprintf("#s%d-%s-%d", n, g.Name()[:4], i/channelSize))
		sem <- struct{}{}
		joined.Add(1)
		go func() {
			defer joined.Done()
			defer func() { <-sem }()
			u.c.SendRaw(t, joinPresence(room, u.name))
			select {
			case good := <-u.joined:
				if good {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			case <-time.After(60 * time.Second):
				t.Logf("%s: %s not joined to %s within 60s", g.Name(), u.name, room)
			}
		}()
	}
	joined.Wait()
	took := time.Since(start)
	time.Sleep(2 * time.Second)
	mem, err := readMemory(g.PID())
	if err != nil {
		t.Fatal(err)
	}
	if g.Name() == "passerelle" {
		e.prof.heap(fmt.Sprintf("scale-%d", n))
	}
	r := ScaleResult{
		Gateway: g.Name(), Users: n, ChannelSize: channelSize, Joined: ok, JoinMs: ms(took),
		IdleKiB: idle.RSS, RSSKiB: mem.RSS, PeakKiB: mem.Peak,
	}
	t.Logf("scale: %s %d users: %d joined in %v, RSS %d → %d KiB", g.Name(), n, ok, took.Round(time.Millisecond), idle.RSS, mem.RSS)
	return r
}
