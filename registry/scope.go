package registry

import "context"

// transportKeyPrefix starts every state key written through a Scope, so
// that a transport's keys never meet the gateway's own (such as its rooms).
const transportKeyPrefix = "t."

// Scope is the part of a registration's state that belongs to its
// transport: a small durable key-value store under its own key prefix. Its
// methods are those of transports.State, so the gateway hands a Scope to a
// transport's Login as it is; the registry knows nothing of transports.
type Scope struct {
	store           Store
	user, transport string
}

// TransportState returns the transport's scope of the registration of user
// with transport in s.
func TransportState(s Store, user, transport string) Scope {
	return Scope{store: s, user: user, transport: transport}
}

// Get returns the value stored under key, or nil if there is none.
func (s Scope) Get(ctx context.Context, key string) ([]byte, error) {
	return s.store.State(ctx, s.user, s.transport, transportKeyPrefix+key)
}

// Put stores value under key, durably.
func (s Scope) Put(ctx context.Context, key string, value []byte) error {
	return s.store.PutState(ctx, s.user, s.transport, transportKeyPrefix+key, value)
}

// Delete removes key; removing a missing key is not an error.
func (s Scope) Delete(ctx context.Context, key string) error {
	return s.store.DeleteState(ctx, s.user, s.transport, transportKeyPrefix+key)
}
