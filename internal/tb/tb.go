// Package tb names the part of testing.TB that the test harnesses
// (testserver, xmpptest, irctest) use, so that a program such as the
// benchmark can drive them too. *testing.T and *testing.B satisfy TB; a
// program uses Program.
package tb

import (
	"fmt"
	"os"
	"runtime"
	"sync"
)

// TB is what a harness needs from its caller.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skip(args ...any)
}

// Program is a TB for a command-line program: failures print to stderr and
// stop the calling goroutine (as in a test), and Cleanup functions run, last
// first, when Close is called.
type Program struct {
	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

var _ TB = (*Program)(nil)

// Helper does nothing.
func (p *Program) Helper() {}

// Cleanup registers f to run at Close.
func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// Errorf reports a failure and goes on.
func (p *Program) Errorf(format string, args ...any) {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
}

// Fatal reports a failure and stops the calling goroutine.
func (p *Program) Fatal(args ...any) { p.Fatalf("%s", fmt.Sprint(args...)) }

// Fatalf reports a failure and stops the calling goroutine.
func (p *Program) Fatalf(format string, args ...any) {
	p.Errorf(format, args...)
	runtime.Goexit()
}

// Logf prints a line to stderr.
func (p *Program) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// Skip is a failure for a program: what it needs is missing.
func (p *Program) Skip(args ...any) { p.Fatal(args...) }

// Failed reports whether any failure was reported.
func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// Close runs the Cleanup functions, last registered first.
func (p *Program) Close() {
	p.mu.Lock()
	fs := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Run calls f in its own goroutine, so that Fatal stops f alone, and
// reports whether f finished without failure.
func (p *Program) Run(f func()) bool {
	done := make(chan bool, 1)
	go func() {
		ok := false
		defer func() { done <- ok }()
		f()
		ok = true
	}()
	return <-done && !p.Failed()
}

// Background is a TB for a test's helper goroutine: failures are kept for
// the test goroutine (Failures, Report), a fatal one stops only the helper,
// and Cleanup goes to the test when one is set (else it does nothing).
type Background struct {
	// Test receives the Cleanup functions; nil drops them.
	Test TB

	mu   sync.Mutex
	errs []string
}

var _ TB = (*Background)(nil)

// Helper does nothing.
func (b *Background) Helper() {}

// Cleanup hands f to the test, if any.
func (b *Background) Cleanup(f func()) {
	if b.Test != nil {
		b.Test.Cleanup(f)
	}
}

// Errorf keeps a failure.
func (b *Background) Errorf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, fmt.Sprintf(format, args...))
}

// Fatal keeps a failure and stops the calling goroutine.
func (b *Background) Fatal(args ...any) { b.Fatalf("%s", fmt.Sprint(args...)) }

// Fatalf keeps a failure and stops the calling goroutine.
func (b *Background) Fatalf(format string, args ...any) {
	b.Errorf(format, args...)
	runtime.Goexit()
}

// Logf does nothing: the test may have ended.
func (b *Background) Logf(string, ...any) {}

// Skip is a failure: a helper has nothing to skip.
func (b *Background) Skip(args ...any) { b.Fatal(args...) }

// Failures returns the failures kept so far.
func (b *Background) Failures() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// Report passes the failures kept so far to t.
func (b *Background) Report(t TB) {
	t.Helper()
	for _, e := range b.Failures() {
		t.Errorf("%s", e)
	}
}
