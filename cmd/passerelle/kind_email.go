package main

import (
	"log/slog"

	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/email"
)

func init() {
	kinds["email"] = func(opts config.Options, log *slog.Logger) (transports.Transport, error) {
		var c email.Config
		if err := opts.Decode(&c); err != nil {
			return nil, err
		}
		return email.New(c, log)
	}
}
