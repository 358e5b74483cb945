//go:build pprof

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // the profiling handlers, on http.DefaultServeMux
	"os"
)

// A binary built with -tags pprof serves net/http/pprof on the address in
// PASSERELLE_PPROF (such as 127.0.0.1:6060), for profiling under load. The
// normal build has no HTTP server at all.
func init() {
	addr := os.Getenv("PASSERELLE_PPROF")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof server stopped", "addr", addr, "err", err)
		}
	}()
}
