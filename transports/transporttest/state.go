package transporttest

import (
	"context"
	"sync"

	"passerelle.dev/passerelle/transports"
)

// State is an in-memory transports.State.
type State struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ transports.State = (*State)(nil)

// NewState returns an empty State.
func NewState() *State { return &State{m: make(map[string][]byte)} }

// Get implements transports.State.
func (s *State) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[key]; ok {
		return append([]byte(nil), v...), nil
	}
	return nil, nil
}

// Put implements transports.State.
func (s *State) Put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// Delete implements transports.State.
func (s *State) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}
