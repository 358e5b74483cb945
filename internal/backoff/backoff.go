// Package backoff computes retry waits: doubling from a minimum up to a
// maximum, with jitter, so that many clients that failed together do not
// retry together.
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
