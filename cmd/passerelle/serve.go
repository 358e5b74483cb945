package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
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

// serve runs every configured transport until ctx is done.
func serve(ctx context.Context, cfg *config.Config, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	slog.SetDefault(log)

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

	store, err := registry.Open(cfg.Database.Path, registry.Options{KeyFile: cfg.Database.KeyFile, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the database", "err", err)
		}
	}()

	gws := make([]*gateway.Gateway, len(cfg.Transports))
	for i, tc := range cfg.Transports {
		gws[i], err = gateway.New(gateway.Config{
			Domain:       tc.Domain,
			Secret:       tc.Secret,
			Server:       cfg.XMPP.Server,
			Name:         tc.Name,
			Transport:    trs[i],
			Store:        store,
			Allowed:      allowFunc(cfg, tc.Domain),
			Logger:       log,
			ReconnectMin: cfg.XMPP.ReconnectMin,
			ReconnectMax: cfg.XMPP.ReconnectMax,
			PingInterval: cfg.XMPP.PingInterval,
			Version:      version(),
		})
		if err != nil {
			return exitError{2, err}
		}
	}
	log.Info("starting", "version", version(), "transports", len(gws), "database", cfg.Database.Path)

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

func allowFunc(cfg *config.Config, transport string) func(string) bool {
	return func(domain string) bool { return cfg.Allowed(transport, domain) }
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
