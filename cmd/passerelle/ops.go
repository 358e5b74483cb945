package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/registry"
)

// newMetricsRegistry holds the gateways' metrics plus the Go runtime's and
// the process's.
func newMetricsRegistry() (*prometheus.Registry, *gateway.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, gateway.NewMetrics(reg)
}

// serveOps serves /metrics and /healthz on addr until ctx is done.
func serveOps(ctx context.Context, addr string, reg *prometheus.Registry, gws []*gateway.Gateway, store registry.Store, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, report := health(r.Context(), gws, store)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, report)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Info("serving metrics and health", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// health reports whether every component is connected and the database
// answers, with one line per part.
func health(ctx context.Context, gws []*gateway.Gateway, store registry.Store) (bool, string) {
	var b strings.Builder
	ok := true
	for _, g := range gws {
		state := "connected"
		if !g.Connected() {
			state, ok = "not connected to the XMPP server", false
		}
		fmt.Fprintf(&b, "%s: %s\n", g.Domain(), state)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := store.Registrations(ctx, registry.ListOptions{Limit: 1}); err != nil {
		ok = false
		fmt.Fprintf(&b, "database: %v\n", err)
	} else {
		b.WriteString("database: ok\n")
	}
	if ok {
		return true, "ok\n" + b.String()
	}
	return false, "unhealthy\n" + b.String()
}

// logFile is a log destination that SIGHUP reopens, for log rotation.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	l := &logFile{path: path}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Write implements io.Writer.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path again, so that a rotated file is let go.
func (l *logFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
