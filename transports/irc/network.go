package irc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lrstanley/girc"

	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/backoff"
	"passerelle.dev/passerelle/transports/netguard"
)

// Events from a connection, tagged with its generation so that a late event
// of an old connection is dropped.
type (
	ircEvent struct {
		net string
		gen int
		ev  girc.Event
	}
	connEnded struct {
		net string
		gen int
		err error
	}
	reconnectTimer struct {
		net string
		gen int
	}
	pollTimer struct {
		net string
		gen int
	}
	registerTimeout struct {
		net string
		gen int
	}
	requestTimeout struct {
		net string
		id  string
	}
)

// Connection states.
const (
	stateIdle = iota
	stateConnecting
	stateRegistered
)

// registrationTimeout bounds the wait for the server's welcome.
const registrationTimeout = time.Minute

// maxQueued bounds the private messages waiting for a connection.
const maxQueued = 100

// network is the user's presence on one IRC network; it lives as long as
// the session, across reconnections.
type network struct {
	s    *Session
	name string
	cfg  NetworkConfig

	gen      int // generation of the current connection
	client   *girc.Client
	out      *outQueue
	state    int
	welcomed *atomic.Bool // set by girc's goroutine on 001, for nick collisions
	retry    *time.Timer
	poller   *time.Timer
	failures int
	// violations counts the connections ended by a line that never ended;
	// unlike failures, a welcome does not reset it.
	violations int
	closing    bool  // we are quitting on purpose
	refused    bool  // the network refused the login: no reconnection
	refusal    error // why, for what the user asks of the network afterwards

	wantNick   string
	nick       string
	sasl       bool // this connection authenticates with SASL
	saslOK     bool
	saslFailed bool
	support    isupport
	guards     guards // bounds on what the server makes this connection do

	channels map[string]*channel
	queued   []transports.Message
	requests map[string]*request
	lastID   map[string]string // last XMPP message id sent to each target
	online   map[string]bool   // watched nicks seen online, casefolded
	pmRooms  map[string]string // nick → channel where the user started a private chat with it
}

func newNetwork(s *Session, name string) *network {
	nick := s.values[fieldNick]
	if n, ok := s.nicks[name]; ok {
		nick = n
	}
	return &network{
		s:        s,
		name:     name,
		cfg:      s.t.network(name),
		wantNick: nick,
		support:  defaultISupport(),
		channels: make(map[string]*channel),
		requests: make(map[string]*request),
		lastID:   make(map[string]string),
		online:   make(map[string]bool),
		pmRooms:  make(map[string]string),
	}
}

// addr is the legacy address of a target on this network.
func (n *network) addr(target string) string {
	return n.s.t.format(address{network: n.name, target: casefold(target)})
}

// connect opens a connection unless one is open or opening.
func (n *network) connect() {
	if n.client != nil || n.refused {
		return
	}
	n.stopRetry()
	useSASL, refusal := n.saslFor()
	if refusal != "" {
		n.s.log.Warn("irc: not sending the SASL password in clear", "network", n.name)
		n.notice(refusal)
		n.refuse(refusal, transports.NotAuthorized)
		return
	}
	n.gen++
	gen := n.gen
	user := n.s.values[fieldUsername]
	if user == "" {
		user = n.wantNick
	}
	real := n.s.values[fieldRealname]
	if real == "" {
		real = n.s.t.cfg.Realname
	}
	welcomed := new(atomic.Bool)
	suffix := n.s.t.cfg.NickSuffix
	tries := 0
	cfg := girc.Config{
		Server:     n.cfg.Host,
		Port:       n.cfg.Port,
		Nick:       n.wantNick,
		User:       user,
		Name:       real,
		SSL:        false, // wireDialer does TLS, below the line bounds
		DisableSTS: true,  // the admin's TLS setting decides, not the server
		AllowFlood: true,  // outQueue paces the lines itself, without blocking anyone
		PingDelay:  time.Minute,
		Version:    "Passerelle",
		RecoverFunc: func(_ *girc.Client, e *girc.HandlerError) {
			n.s.log.Error("irc: panic in a girc handler", "err", e.Error())
		},
		HandleNickCollide: func(old string) string {
			// At connection time only: a later NICK that fails is the
			// user's to retry.
			if welcomed.Load() || tries >= 5 {
				return ""
			}
			tries++
			return old + suffix
		},
	}
	if useSASL {
		cfg.SASL = &girc.SASLPlain{User: user, Pass: n.s.values[fieldPassword]}
	}
	c := girc.New(cfg)
	events := n.s.events
	done := n.s.done
	name := n.name
	emit := func(ev any) bool {
		select {
		case events <- ev:
			return true
		case <-done:
			return false
		}
	}
	base := &net.Dialer{Timeout: dialTimeout}
	if !n.s.t.listed(n.name) {
		base = n.s.t.guard.Dialer(base)
	}
	dialer := wireDialer{
		ctx:  n.s.ctx,
		base: base,
		wrap: func(conn net.Conn) net.Conn { return newWireConn(conn, name, gen, welcomed, emit) },
	}
	if n.cfg.tlsConfig != nil {
		dialer.tls = n.cfg.tlsConfig.Clone()
	}
	n.client, n.welcomed, n.state = c, welcomed, stateConnecting
	n.saslOK, n.saslFailed, n.support = false, false, defaultISupport()
	n.sasl = useSASL
	n.resetGuards()
	n.out = newOutQueue(c, n.s.t.cfg.LinesPerSecond, n.s.t.cfg.Burst, n.s.log)
	n.s.log.Info("irc: connecting", "network", n.name, "server", fmt.Sprintf("%s:%d", n.cfg.Host, n.cfg.Port), "tls", *n.cfg.TLS, "sasl", useSASL)
	go func() {
		var err error
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("irc: panic in the connection: %v", r)
				n.s.log.Error("irc: panic in the connection", "network", name, "panic", r)
			}
			select {
			case events <- connEnded{name, gen, err}:
			case <-done:
			}
		}()
		err = c.DialerConnect(dialer)
	}()
	n.s.after(registrationTimeout, registerTimeout{name, gen})
}

// send queues one line for the server.
func (n *network) send(cmd string, params ...string) error {
	if n.out == nil {
		return transports.Errorf(transports.NotConnected, "not connected to %s", n.name)
	}
	return n.out.push(&girc.Event{Command: cmd, Params: params})
}

// registered handles the server's welcome: the connection is usable.
func (n *network) registered(nick string) {
	n.state = stateRegistered
	n.nick = nick
	n.failures = 0
	if n.sasl && !n.saslOK {
		n.refused = true
		n.notice("SASL authentication as " + n.account() + " did not succeed on " + n.name + ": not staying connected. Check the password in your registration.")
		n.failQueued(transports.Errorf(transports.NotAuthorized, "SASL authentication failed on %s", n.name))
		n.client.Quit("SASL authentication failed")
		return
	}
	n.s.log.Info("irc: connected", "network", n.name, "nick", nick)
	if casefold(nick) != casefold(n.wantNick) {
		n.notice(fmt.Sprintf("The nickname %s is taken on %s: you are %s.", n.wantNick, n.name, nick))
	}
	n.s.deliver(transports.Presence{From: n.addr(""), Available: true, Status: "Connected as " + nick})
	if p := n.s.presence; p.Available && p.Show != transports.ShowNone && p.Show != transports.ShowChat {
		_ = n.send("AWAY", awayText(p))
	}
	for _, ch := range n.sortedChannels() {
		n.sendJoin(ch)
	}
	queued := n.queued
	n.queued = nil
	for _, m := range queued {
		n.s.send(m)
	}
	n.startPolling()
}

func (n *network) account() string {
	if u := n.s.values[fieldUsername]; u != "" {
		return u
	}
	return n.wantNick
}

// ended handles the end of a connection: tell the user, then reconnect with
// backoff unless the session no longer needs this network.
func (n *network) ended(err error) {
	wasUp := n.state == stateRegistered
	n.client = nil
	n.out.stop()
	n.out = nil
	n.state = stateIdle
	n.stopPolling()
	for _, r := range n.requests {
		n.finish(r, transports.Errorf(transports.NotConnected, "disconnected from %s", n.name))
	}
	for nick := range n.online {
		delete(n.online, nick)
		n.s.deliver(transports.Presence{From: n.addr(nick)})
	}
	if n.closing {
		return
	}
	reason := "the server closed the connection"
	switch {
	case errors.Is(err, errEndlessLine):
		// A broken or hostile server, which a reconnection meets again:
		// give up after a few, whatever the welcomes in between.
		reason = err.Error()
		n.violations++
		if n.violations >= maxViolations {
			n.refused = true
			reason += fmt.Sprintf(", %d times; not connecting again", n.violations)
		}
	case err != nil && !n.s.t.listed(n.name) && !wasUp:
		// A network the user named, never reached: tell nothing that
		// would map the gateway's surroundings (refused, silent, TLS).
		reason = netguard.UserText(err)
		if errors.Is(err, netguard.ErrRefused) {
			n.refused = true
		}
	case err != nil:
		reason = err.Error()
	}
	if n.saslFailed {
		n.refused = true
		reason = "SASL authentication as " + n.account() + " failed; check the password in your registration"
	}
	if isCertError(err) && n.s.t.listed(n.name) {
		n.refused = true
		reason = "its TLS certificate cannot be verified (" + reason + "); the administrator must check the network's TLS settings"
	}
	if n.refused {
		n.s.log.Warn("irc: network refused", "network", n.name, "err", err)
		kind := transports.Unreachable
		if n.saslFailed {
			kind = transports.NotAuthorized
		}
		n.refuse(fmt.Sprintf("Not connected to %s: %s.", n.name, reason), kind)
		return
	}
	n.failures++
	wait := n.backoff()
	note := fmt.Sprintf("Connection to %s lost (%s); reconnecting in %s.", n.name, reason, roundWait(wait))
	if !wasUp {
		note = fmt.Sprintf("Cannot connect to %s (%s); trying again in %s.", n.name, reason, roundWait(wait))
	}
	n.s.log.Warn("irc: connection ended", "network", n.name, "err", err, "retry_in", wait)
	n.s.deliver(transports.Presence{From: n.addr(""), Status: note})
	for _, ch := range n.sortedChannels() {
		switch {
		case ch.joined || ch.joining || ch.wasJoined:
			ch.joined, ch.joining, ch.wasJoined = false, false, true
			n.roomNote(ch, note)
		default:
			// Never joined: the user waits for an answer to the join.
			delete(n.channels, ch.name)
			n.s.deliver(transports.RoomLeft{Room: n.addr(ch.name), Err: transports.Errorf(transports.Unreachable, "cannot connect to %s: %s", n.name, reason), Reason: note})
		}
	}
	if len(n.queued) > 0 && (n.failures >= 2 || !wasUp) {
		n.failQueued(transports.Errorf(transports.Unreachable, "cannot connect to %s: %s", n.name, reason))
	}
	if len(n.channels) == 0 && (n.failures >= maxConnectFailures || !n.watching()) {
		return // nothing needs the network now; the next need reconnects
	}
	n.retry = n.s.after(wait, reconnectTimer{n.name, n.gen})
}

// refuse gives up on the network until the session ends: the user is told
// why, and waiting messages and rooms fail.
func (n *network) refuse(note string, kind transports.ErrorKind) {
	n.refused = true
	n.refusal = transports.Errorf(kind, "%s", note)
	n.s.deliver(transports.Presence{From: n.addr(""), Status: note})
	n.failQueued(transports.Errorf(kind, "%s", note))
	for _, ch := range n.sortedChannels() {
		n.roomNote(ch, note)
	}
	n.dropChannels(note)
}

// watching reports whether the available user follows contacts here.
func (n *network) watching() bool {
	return n.s.presence.Available && len(n.watchedNicks()) > 0
}

// isCertError reports whether a connection failed on certificate
// verification, which no retry will fix.
func isCertError(err error) bool {
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var cerr x509.CertificateInvalidError
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr)
}

func roundWait(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// maxConnectFailures is how many failed attempts in a row end the retries
// for a network that no room needs.
const maxConnectFailures = 5

// maxViolations is how many connections the server may end by breaking
// the line bound before the session stops reconnecting to it.
const maxViolations = 3

// backoff is the jittered, doubling wait before the next attempt.
func (n *network) backoff() time.Duration {
	return backoff.Wait(n.failures+n.violations, n.s.t.cfg.ReconnectMin.Duration, n.s.t.cfg.ReconnectMax.Duration)
}

func (n *network) stopRetry() {
	if n.retry != nil {
		n.retry.Stop()
		n.retry = nil
	}
}

// shutdown quits the network for good.
func (n *network) shutdown(reason string) {
	n.closing = true
	n.stopRetry()
	n.stopPolling()
	if n.client == nil {
		return
	}
	if reason != "" && n.out != nil {
		n.out.quit(reason)
	}
	n.client.Close()
	n.client = nil
	if n.out != nil {
		n.out.stop()
		n.out = nil
	}
}

// failQueued returns the waiting private messages to the user.
func (n *network) failQueued(err error) {
	for _, m := range n.queued {
		n.s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: err})
	}
	n.queued = nil
}

// notice tells the user something about the network, as a message from the
// network's address.
func (n *network) notice(text string) {
	n.s.deliver(transports.Message{From: n.addr(""), Type: transports.Chat, Body: text})
}

// roomNote tells the user something in a room, from the room itself.
func (n *network) roomNote(ch *channel, text string) {
	n.s.deliver(transports.Message{From: n.addr(ch.name), Type: transports.Groupchat, Body: text})
}

func awayText(p transports.Presence) string {
	if s := strings.TrimSpace(sanitizeLine(p.Status)); s != "" {
		return s
	}
	return "Away"
}
