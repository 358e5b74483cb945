package gateway

import (
	"fmt"
	"testing"
	"time"
)

// TestAttemptsWindow: a sliding window per user, with the wait until the
// oldest attempt leaves it.
func TestAttemptsWindow(t *testing.T) {
	var a attempts
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := a.take("u", t0.Add(time.Duration(i)*time.Minute), 3, 10*time.Minute); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	ok, wait := a.take("u", t0.Add(5*time.Minute), 3, 10*time.Minute)
	if ok || wait != 5*time.Minute {
		t.Errorf("4th attempt: %v, wait %v", ok, wait)
	}
	if ok, _ := a.take("v", t0.Add(5*time.Minute), 3, 10*time.Minute); !ok {
		t.Error("another user refused")
	}
	if ok, _ := a.take("u", t0.Add(10*time.Minute), 3, 10*time.Minute); !ok {
		t.Error("refused once the first attempt left the window")
	}
	if ok, wait := a.take("u", t0.Add(10*time.Minute+time.Second), 3, 10*time.Minute); ok || wait != time.Minute-time.Second {
		t.Errorf("then: %v, wait %v", ok, wait)
	}
}

// TestAttemptsBounded: expired users are swept, and beyond maxTrackedUsers
// live ones the gateway refuses new users rather than grow.
func TestAttemptsBounded(t *testing.T) {
	var a attempts
	t0 := time.Unix(1000, 0)
	for i := range maxTrackedUsers {
		if ok, _ := a.take(fmt.Sprint(i), t0, 1, time.Minute); !ok {
			t.Fatalf("user %d refused", i)
		}
	}
	if ok, wait := a.take("one more", t0, 1, time.Minute); ok || wait != 0 {
		t.Errorf("beyond the bound: %v, %v", ok, wait)
	}
	// A window later, all have expired and are swept.
	if ok, _ := a.take("one more", t0.Add(time.Minute), 1, time.Minute); !ok {
		t.Error("refused after the others expired")
	}
	if n := len(a.byUser); n != 1 {
		t.Errorf("%d users remembered after the sweep", n)
	}
}
