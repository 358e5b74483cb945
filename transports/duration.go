package transports

import (
	"fmt"
	"time"
)

// Duration is a duration written in a TOML configuration as a string such
// as "30s" or "1m"; transports use it in their options.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler. Negative durations are
// refused.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (like \"30s\" or \"1m\")", b)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", b)
	}
	d.Duration = v
	return nil
}
