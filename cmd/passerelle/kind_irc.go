package main

import (
	"log/slog"

	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/irc"
)

func init() {
	kinds["irc"] = func(opts config.Options, log *slog.Logger) (transports.Transport, error) {
		var c irc.Config
		if err := opts.Decode(&c); err != nil {
			return nil, err
		}
		return irc.New(c, log)
	}
}
