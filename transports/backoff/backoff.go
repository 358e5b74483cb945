// Package backoff computes retry waits, for the transports and the gateway
// alike: doubling from a minimum up to a maximum, with jitter, so that many
// clients that failed together do not retry together.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Wait is the wait before retry number attempt (1 for the first): lo
// doubled attempt-1 times, at most hi, then a random point in its upper
// half.
func Wait(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// Backoff counts consecutive failures and gives the wait before each retry,
// from Min doubling up to Max (see Wait). The zero value with Min and Max
// set is ready to use; it is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	failures int
}

// Next counts one more failure and returns the wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	b.failures++
	return Wait(b.failures, b.Min, b.Max)
}

// Reset starts the waits over from Min.
func (b *Backoff) Reset() { b.failures = 0 }
