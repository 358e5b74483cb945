// Package testnet is an in-memory legacy network for tests and the demo: a
// transports.Transport whose accounts, contacts and traffic a test can set up
// and inspect. It is not a product feature and is only linked into test
// binaries and builds with the "demo" tag.
package testnet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"passerelle.dev/passerelle/transports"
)

// Network is the legacy network: its accounts and what happens on it.
type Network struct {
	// Type is the disco identity type reported (default "xmpp").
	Type string
	// PasswordBoundTo is the password field's BoundTo (none by default);
	// set it before the gateway starts.
	PasswordBoundTo []string

	mu         sync.Mutex
	accounts   map[string]string   // username → password
	online     map[string][]string // username → contacts shown online at login
	sessions   map[string]*Session // by XMPP user
	received   []transports.Message
	logins     int
	loginErr   error
	loginDelay time.Duration
}

// New returns a network with no accounts.
func New() *Network {
	return &Network{
		accounts: make(map[string]string),
		online:   make(map[string][]string),
		sessions: make(map[string]*Session),
	}
}

// AddAccount creates a legacy account; contacts are shown online when the
// account logs in.
func (n *Network) AddAccount(username, password string, contacts ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.accounts[username] = password
	n.online[username] = contacts
}

// FailLogins makes every following Login fail with err (nil to stop).
func (n *Network) FailLogins(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loginErr = err
}

// SlowLogins makes Login return d after the session started delivering
// events, as a real network that greets before the login call returns.
func (n *Network) SlowLogins(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loginDelay = d
}

// Session returns the live session of an XMPP user, if any.
func (n *Network) Session(user string) (*Session, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.sessions[user]
	return s, ok
}

// Logins counts the successful logins so far.
func (n *Network) Logins() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logins
}

// Received returns the messages users sent into the network so far.
func (n *Network) Received() []transports.Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]transports.Message(nil), n.received...)
}

// Info implements transports.Transport.
func (n *Network) Info() transports.Info {
	typ := n.Type
	if typ == "" {
		typ = "xmpp"
	}
	return transports.Info{
		Type:         typ,
		Name:         "Test network",
		Instructions: "Enter your test network username and password.",
		Fields: []transports.Field{
			{Name: "username", Label: "Username", Kind: transports.Text, Required: true},
			{Name: "password", Label: "Password", Kind: transports.Secret, Required: true, BoundTo: n.PasswordBoundTo},
			{Name: "greeting", Label: "Greeting sent at login", Kind: transports.Text},
			{Name: "echo", Label: "Echo messages back", Kind: transports.Bool, Default: "true"},
		},
		AddressPrompt: "Test network address",
		AddressDesc:   "The contact's address, such as alice@test.example.",
	}
}

// ParseAddress implements transports.Transport: an address is name@host,
// case-insensitive, or a bare host for the network itself.
func (n *Network) ParseAddress(addr string) (string, error) {
	canon := strings.ToLower(addr)
	local, host, found := strings.Cut(canon, "@")
	if !found {
		local, host = "x", canon
	}
	if local == "" || host == "" || strings.ContainsAny(canon, " \t\r\n\x00") || strings.Count(canon, "@") > 1 {
		return "", transports.Errorf(transports.BadAddress, "%q is not of the form name@host", addr)
	}
	return canon, nil
}

// Register implements transports.Transport.
func (n *Network) Register(ctx context.Context, req transports.RegisterRequest) (transports.Values, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	pass, ok := n.accounts[req.Values["username"]]
	if !ok || pass != req.Values["password"] {
		return nil, transports.Errorf(transports.NotAuthorized, "wrong username or password")
	}
	return req.Values, nil
}

// Login implements transports.Transport.
func (n *Network) Login(ctx context.Context, req transports.LoginRequest) (transports.Session, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.loginErr != nil {
		return nil, n.loginErr
	}
	username := req.Values["username"]
	if pass, ok := n.accounts[username]; !ok || pass != req.Values["password"] {
		return nil, transports.Errorf(transports.NotAuthorized, "wrong username or password")
	}
	s := &Session{
		net:      n,
		user:     req.User,
		values:   req.Values,
		events:   req.Events,
		state:    req.State,
		presence: req.Presence,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	n.sessions[req.User] = s
	n.logins++
	go s.deliver()
	s.Inject(transports.Status{Connected: true})
	for _, c := range n.online[username] {
		s.Inject(transports.Presence{From: c, Available: true, Status: "online on the test network"})
	}
	if g := req.Values["greeting"]; g != "" {
		s.Inject(transports.Message{From: "", Type: transports.Chat, Body: g})
	}
	if n.loginDelay > 0 {
		n.mu.Unlock()
		time.Sleep(n.loginDelay)
		n.mu.Lock()
	}
	return s, nil
}

func (n *Network) record(m transports.Message) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.received = append(n.received, m)
}

func (n *Network) forget(s *Session) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sessions[s.user] == s {
		delete(n.sessions, s.user)
	}
}

// Error returns a transports error of the given kind, for tests.
func Error(kind transports.ErrorKind, text string) error {
	return &transports.Error{Kind: kind, Text: text, Err: fmt.Errorf("testnet: %s", text)}
}
