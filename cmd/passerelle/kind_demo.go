//go:build demo

package main

import (
	"log/slog"

	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/internal/testnet"
	"passerelle.dev/passerelle/transports"
)

// The demo build adds the in-memory test network so that the core can be
// tried without a legacy server. Release builds do not have it.
func init() {
	kinds["testnet"] = func(opts config.Options, _ *slog.Logger) (transports.Transport, error) {
		var o struct {
			Accounts []struct {
				Username string   `toml:"username"`
				Password string   `toml:"password"`
				Contacts []string `toml:"contacts"`
			} `toml:"accounts"`
		}
		if err := opts.Decode(&o); err != nil {
			return nil, err
		}
		n := testnet.New()
		for _, a := range o.Accounts {
			n.AddAccount(a.Username, a.Password, a.Contacts...)
		}
		return n, nil
	}
}
