package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"

	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/registry"
)

// backupPath is where a running gateway writes its backup on SIGUSR1.
func backupPath(cfg *config.Config) string { return cfg.Database.Path + ".backup" }

// backupCommand runs `passerelle backup DEST` against a stopped gateway's
// database.
func backupCommand(ctx context.Context, cfg *config.Config, args []string, out io.Writer) error {
	if len(args) != 1 {
		return exitError{2, errors.New("usage: backup DEST")}
	}
	db, err := registry.Open(cfg.Database.Path, registry.Options{KeyFile: cfg.Database.KeyFile, ReadOnly: true})
	if errors.Is(err, registry.ErrLocked) {
		return fmt.Errorf("%s is in use by a running gateway: send it SIGUSR1 (systemctl kill -s USR1 passerelle) and it writes %s", cfg.Database.Path, backupPath(cfg))
	}
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Backup(ctx, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(out, "backed up %s to %s (back up the key file %s separately)\n", cfg.Database.Path, args[0], cfg.Database.KeyFile)
	return nil
}

// backupOnSignal writes a consistent copy of the database to
// backupPath(cfg) on each SIGUSR1, while the gateway runs.
func backupOnSignal(ctx context.Context, cfg *config.Config, db *registry.DB, log *slog.Logger) {
	onSignal(ctx, syscall.SIGUSR1, func() {
		dest := backupPath(cfg)
		if err := db.Backup(ctx, dest); err != nil {
			log.Error("SIGUSR1: backup failed", "err", err)
			return
		}
		log.Info("SIGUSR1: database backed up", "path", dest)
	})
}
