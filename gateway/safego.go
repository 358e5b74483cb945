package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// errPanic marks the error a recovered panic becomes. A panic is a bug
// met on some input: what caused it is not retried on its own.
var errPanic = errors.New("gateway: panic")

// goSafe runs f in a new goroutine. A panic in f is recovered and logged
// with its stack, then handed to onPanic as an error wrapping errPanic (if
// onPanic is not nil), so that it costs the one event f was handling, never
// the process.
func goSafe(log *slog.Logger, what string, f func(), onPanic func(error)) {
	go func() {
		defer func() {
			if err := recovered(log, what, recover()); err != nil && onPanic != nil {
				onPanic(err)
			}
		}()
		f()
	}()
}

// recovered logs r, the value of a recover() of a goroutine doing what, and
// turns it into an error; nil if there was no panic.
func recovered(log *slog.Logger, what string, r any) error {
	if r == nil {
		return nil
	}
	log.Error("panic recovered", "in", what, "panic", r, "stack", string(debug.Stack()))
	return fmt.Errorf("%w in %s: %v", errPanic, what, r)
}
