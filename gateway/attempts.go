package gateway

import (
	"sync"
	"time"
)

// maxTrackedUsers bounds the users whose registration attempts are
// remembered at once: beyond it, with the expired ones swept, the gateway
// refuses registrations until some expire rather than grow without end.
const maxTrackedUsers = 100_000

// attempts remembers each user's recent registration attempts, for a
// sliding-window limit that holds across the user's loop ending and
// starting again.
type attempts struct {
	mu        sync.Mutex
	byUser    map[string][]time.Time // oldest first, all within the window
	nextSweep int
}

// take records an attempt by user at now if fewer than limit were made in
// the window before it. Otherwise it returns false and how long until the
// next attempt may go (zero when the gateway as a whole is full).
func (a *attempts) take(user string, now time.Time, limit int, window time.Duration) (ok bool, wait time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byUser == nil {
		a.byUser = make(map[string][]time.Time)
	}
	recent := expire(a.byUser[user], now, window)
	if len(recent) >= limit {
		a.byUser[user] = recent
		return false, recent[len(recent)-limit].Add(window).Sub(now)
	}
	if _, known := a.byUser[user]; !known {
		if n := len(a.byUser); n >= a.nextSweep || n >= maxTrackedUsers {
			for u, ts := range a.byUser {
				if len(expire(ts, now, window)) == 0 {
					delete(a.byUser, u)
				}
			}
			a.nextSweep = max(1024, 2*len(a.byUser))
		}
		if len(a.byUser) >= maxTrackedUsers {
			return false, 0
		}
	}
	a.byUser[user] = append(recent, now)
	return true, 0
}

// expire drops the times that are a window or more before now.
func expire(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-window)) {
		i++
	}
	return ts[i:]
}
