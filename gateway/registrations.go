package gateway

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/registry"
)

// onConnect runs after every successful connection: users' loops re-announce
// their presences, and registered users are probed so that those already
// online are logged in.
func (g *Gateway) onConnect() {
	g.broadcast(reconnected{gen: g.conn.generation()})
	goSafe(g.log, "probing registered users", g.probeRegistered, nil)
}

// probeRegistered sends a presence probe to every registered user, a page at
// a time, so that the server tells us who is online.
func (g *Gateway) probeRegistered() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err := g.eachRegistration(ctx, func(r registry.Registration) error {
		if g.info.AlwaysOn {
			if bare, err := jid.Parse(r.User); err == nil {
				g.dispatch(bare.Bare(), wakeUp{})
			}
		}
		return g.conn.send(ctx, presenceOut{From: g.domain.String(), To: r.User, Type: "probe"})
	})
	if err != nil {
		g.log.Warn("probing registered users stopped", "err", err)
	}
}

// eachRegistration calls f for every registration with this transport, a
// page of the store at a time, until f returns an error.
func (g *Gateway) eachRegistration(ctx context.Context, f func(registry.Registration) error) error {
	after := ""
	for {
		regs, err := g.registrations(ctx, after, listPage)
		if err != nil {
			return err
		}
		for _, r := range regs {
			if err := f(r); err != nil {
				return err
			}
			after = r.User
		}
		if len(regs) < listPage {
			return nil
		}
	}
}

// registrations lists up to limit registrations with this transport, of
// the users after the given one.
func (g *Gateway) registrations(ctx context.Context, after string, limit int) ([]registry.Registration, error) {
	return g.cfg.Store.Registrations(ctx, registry.ListOptions{Transport: g.domain.String(), After: after, Limit: limit})
}

// listPage is how many registrations are read from the store at a time.
const listPage = 500
