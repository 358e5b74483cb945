package backoff

import (
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	for _, c := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{1, time.Second, time.Minute},
		{3, time.Second, time.Minute},
		{20, time.Second, time.Minute},
	} {
		full := c.lo << (c.attempt - 1)
		if full > c.hi || full <= 0 {
			full = c.hi
		}
		for range 100 {
			if w := Wait(c.attempt, c.lo, c.hi); w < full/2 || w > full {
				t.Fatalf("Wait(%d, %v, %v) = %v, want in [%v, %v]", c.attempt, c.lo, c.hi, w, full/2, full)
			}
		}
	}
}
