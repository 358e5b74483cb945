package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler fetches pprof profiles from a Passerelle built with -tags pprof
// (see cmd/passerelle/pprof.go) into a directory; the zero value does
// nothing. For a CPU profile, fetch /debug/pprof/profile from the same
// address while a scenario runs.
type profiler struct {
	dir  string
	addr string
}

// pprofAddr is where the profiled binary serves pprof.
const pprofAddr = "127.0.0.1:6061"

func (p profiler) enabled() bool { return p.dir != "" }

// heap saves a heap profile (after a GC) as heap-<name>.pb.gz.
func (p profiler) heap(name string) {
	if p.enabled() {
		p.fetch("/debug/pprof/heap?gc=1", "heap-"+name+".pb.gz", 30*time.Second)
		p.fetch("/debug/pprof/heap?debug=1", "heap-"+name+".txt", 30*time.Second)
		p.fetch("/debug/pprof/goroutine?debug=1", "goroutine-"+name+".txt", 30*time.Second)
	}
}

func (p profiler) fetch(path, file string, timeout time.Duration) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
	}
}
