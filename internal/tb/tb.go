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
