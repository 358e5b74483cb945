package transports

import (
	"testing"
	"time"
)

func TestDurationUnmarshalText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Duration != 90*time.Second {
		t.Errorf(`"1m30s" = %v, %v`, d.Duration, err)
	}
	for _, bad := range []string{"", "30", "soon", "-1s"} {
		if err := (&Duration{}).UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
