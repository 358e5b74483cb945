package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"passerelle.dev/passerelle/gateway"
	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// newTransport builds a transport of one kind from its config options.
type newTransport func(opts config.Options, log *slog.Logger) (transports.Transport, error)

// kinds lists the transports this binary knows. Adding a network is one line
// here and one package under transports/.
var kinds = map[string]newTransport{}

func kindNames() []string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	return names
}

func loadConfig(path string) (*config.Config, error) {
	return config.Load(path, kindNames())
}

// serve runs every configured transport until ctx is done. SIGHUP reopens
// the log file and reloads the access lists and the log level from the
// config file.
func serve(ctx context.Context, cfg *config.Config, logOut io.Writer) error {
	var reopen func() error
	if cfg.LogFile != "" {
		lf, err := openLogFile(cfg.LogFile)
		if err != nil {
			return exitError{2, err}
		}
		defer lf.Close()
		logOut, reopen = lf, lf.Reopen
	}
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := newLogger(cfg, level, logOut)
	slog.SetDefault(log)
	var live atomic.Pointer[config.Config]
	live.Store(cfg)
	var running atomic.Pointer[[]*gateway.Gateway] // set once they exist
	go reloadOnHangup(ctx, cfg.Path, &live, level, reopen, log, func() {
		if gws := running.Load(); gws != nil {
			for _, g := range *gws {
				g.AccessChanged()
			}
		}
	})

	// Build every transport first: their option errors are config errors,
	// reported before anything is opened or connected.
	trs := make([]transports.Transport, len(cfg.Transports))
	for i, tc := range cfg.Transports {
		tr, err := kinds[tc.Kind](tc.Options, log.With("transport", tc.Domain))
		if err != nil {
			return exitError{2, fmt.Errorf("transport[%d] (%s): %w", i, tc.Domain, err)}
		}
		trs[i] = tr
	}

	store, err := registry.Open(cfg.Database.Path, registry.Options{KeyFile: cfg.Database.KeyFile, Timeout: time.Second, Logger: log})
	if errors.Is(err, registry.ErrLocked) {
		return fmt.Errorf("database %s is locked by another process (is another passerelle running on it?): not starting", cfg.Database.Path)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the database", "err", err)
		}
	}()

	go backupOnSignal(ctx, cfg, store, log)
	promReg, metrics := newMetricsRegistry()
	gws := make([]*gateway.Gateway, len(cfg.Transports))
	for i, tc := range cfg.Transports {
		gws[i], err = gateway.New(gateway.Config{
			Domain:       tc.Domain,
			Secret:       tc.Secret,
			Server:       cfg.XMPP.Server,
			Name:         tc.Name,
			Transport:    trs[i],
			Store:        store,
			Allowed:      allowFunc(&live, tc.Domain),
			IsAdmin:      func(j string) bool { return live.Load().IsAdmin(j) },
			Logger:       log,
			ReconnectMin: cfg.XMPP.ReconnectMin,
			ReconnectMax: cfg.XMPP.ReconnectMax,
			PingInterval: cfg.XMPP.PingInterval,
			Version:      version(),
			Metrics:      metrics,
			Limits:       tc.Limits,

			MaxStanzaBytes: cfg.XMPP.MaxStanzaBytes,
		})
		if err != nil {
			return exitError{2, err}
		}
	}
	running.Store(&gws)
	log.Info("starting", "version", version(), "transports", len(gws), "database", cfg.Database.Path)
	if cfg.Metrics.Listen != "" {
		if err := serveOps(ctx, cfg.Metrics.Listen, promReg, gws, store, log); err != nil {
			return err
		}
	}

	errs := make(chan error, len(gws))
	var wg sync.WaitGroup
	for _, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Run(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", g.Domain(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	log.Info("stopped")
	return nil
}

func allowFunc(live *atomic.Pointer[config.Config], transport string) func(string) bool {
	return func(domain string) bool { return live.Load().Allowed(transport, domain) }
}

// reloadOnHangup reopens the log file (if any) and re-reads the config on
// SIGHUP. The access lists and the log level take effect at once, without
// dropping the sessions still allowed; accessChanged (if not nil) is then
// called to end the others. Other changes need a restart, and an invalid
// file changes nothing.
func reloadOnHangup(ctx context.Context, path string, live *atomic.Pointer[config.Config], level *slog.LevelVar, reopen func() error, log *slog.Logger, accessChanged func()) {
	onSignal(ctx, syscall.SIGHUP, func() {
		if reopen != nil {
			if err := reopen(); err != nil {
				log.Error("SIGHUP: cannot reopen the log file", "err", err)
			} else {
				log.Info("SIGHUP: log file reopened")
			}
		}
		next, err := loadConfig(path)
		if err != nil {
			log.Error("SIGHUP: config not reloaded", "err", err)
			return
		}
		if cur := live.Load(); !sameTransports(cur, next) || next.XMPP != cur.XMPP || next.Database != cur.Database || next.Metrics != cur.Metrics || next.LogFile != cur.LogFile {
			log.Warn("SIGHUP: transport, limit, server, database, metrics and log file changes need a restart; applying access lists and log level only")
		}
		live.Store(next)
		level.Set(next.LogLevel)
		log.Info("SIGHUP: reloaded access lists and log level", "path", path)
		if accessChanged != nil {
			accessChanged()
		}
	})
}

// onSignal calls f on each sig the process gets, one at a time, until ctx
// is done.
func onSignal(ctx context.Context, sig os.Signal, f func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			f()
		}
	}
}

func sameTransports(a, b *config.Config) bool {
	if len(a.Transports) != len(b.Transports) {
		return false
	}
	for i := range a.Transports {
		x, y := a.Transports[i], b.Transports[i]
		if x.Kind != y.Kind || x.Domain != y.Domain || x.Secret != y.Secret || x.Name != y.Name || x.Limits != y.Limits {
			return false
		}
	}
	return true
}

func newLogger(cfg *config.Config, level *slog.LevelVar, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
