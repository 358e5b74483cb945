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

func TestBackoffGrowsAndResets(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 8 * time.Second}
	for i, full := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if w := b.Next(); w < full/2 || w > full {
			t.Fatalf("wait %d = %v, want in [%v, %v]", i+1, w, full/2, full)
		}
	}
	b.Reset()
	if w := b.Next(); w > time.Second {
		t.Fatalf("first wait after Reset = %v, want at most %v", w, time.Second)
	}
	// A configuration error: every wait is about Max.
	b.Min = b.Max
	b.Reset()
	for range 3 {
		if w := b.Next(); w < 4*time.Second || w > 8*time.Second {
			t.Fatalf("wait from Min = Max is %v, want in [4s, 8s]", w)
		}
	}
}
