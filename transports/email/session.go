package email

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"passerelle.dev/passerelle/transports"
)

// sendQueue bounds the mails waiting for the SMTP server.
const sendQueue = 100

// deliverTimeout bounds one hand-over of an event to the gateway.
const deliverTimeout = 30 * time.Second

var errClosed = transports.Errorf(transports.NotConnected, "the mail session is closed")

// Session is one user's mailbox: a sender goroutine that delivers queued
// mails over SMTP, and a watcher goroutine that follows the INBOX over IMAP
// and hands each new mail to the gateway, in UID order, exactly once.
type Session struct {
	t    *Transport
	acct account
	sink transports.Sink
	log  *slog.Logger
	thr  threads
	st   transports.State

	ctx         context.Context // ends when Close is done
	cancel      context.CancelFunc
	watchCtx    context.Context // ends when Close starts
	stopWatcher context.CancelFunc
	out         chan outMail
	wake        chan struct{} // the IMAP server announced new mail
	wg          sync.WaitGroup

	skipLists bool // the user's filters, defaulting to the config's
	skipAuto  bool

	// Owned by the watcher goroutine.
	regStart     cursor         // the INBOX position registration saw
	careful      bool           // a fetch failed: fetch one mail at a time
	fetchFails   map[uint64]int // failed fetches per mail (UIDVALIDITY, UID)
	deliverFails map[uint64]int // refused deliveries per mail

	mu        sync.Mutex
	closed    bool
	watched   map[string]bool
	connected bool
}

// outMail is a chat message waiting to be sent as a mail.
type outMail struct {
	m transports.Message
}

func newSession(t *Transport, acct account, req transports.LoginRequest, log *slog.Logger) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	watchCtx, stopWatcher := context.WithCancel(ctx)
	s := &Session{
		watchCtx:    watchCtx,
		stopWatcher: stopWatcher,
		t:           t,
		acct:        acct,
		sink:        req.Events,
		log:         log,
		thr:         threads{state: req.State},
		st:          req.State,
		ctx:         ctx,
		cancel:      cancel,
		out:         make(chan outMail, sendQueue),
		wake:        make(chan struct{}, 1),
		watched:     make(map[string]bool),
	}
	s.regStart = parseStart(req.Values[fieldInboxStart])
	s.fetchFails = make(map[uint64]int)
	s.deliverFails = make(map[uint64]int)
	for _, c := range req.Contacts {
		s.watched[c] = true
	}
	s.skipLists = flag(req.Values[fieldSkipLists], t.cfg.SkipMailingLists)
	s.skipAuto = flag(req.Values[fieldSkipAutomated], t.cfg.SkipAutomated)
	return s
}

// imapOptions routes the server's announcements of new mail to the
// watcher without blocking the IMAP client.
func (s *Session) imapOptions() *imapclient.Options {
	return &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
		},
	}}
}

func (s *Session) start(c *imapConn) {
	s.wg.Add(2)
	go s.sendLoop()
	go s.watchLoop(c)
}

// Send implements transports.Session: the mail is queued and sent in the
// background; a failure comes back as a SendFailure.
func (s *Session) Send(_ context.Context, m transports.Message) error {
	to, err := parseAddress(m.To)
	if err != nil {
		return err
	}
	if m.Body == "" {
		return nil // a subject alone, chat states: nothing to mail
	}
	m.To = to
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	select {
	case s.out <- outMail{m}:
		return nil
	default:
		return transports.Errorf(transports.RateLimited, "too many mails waiting to be sent; try again shortly")
	}
}

// SetPresence implements transports.Session: email has no presence.
func (s *Session) SetPresence(context.Context, transports.Presence) error { return nil }

// Watch implements transports.ContactWatcher: email contacts show as
// available while the mailbox is connected.
func (s *Session) Watch(_ context.Context, addr string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.watched[addr] = true
	} else {
		delete(s.watched, addr)
	}
	if on && s.connected && !s.closed {
		// Close waits for this delivery too: nothing is delivered after
		// Close returns.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.deliver(transports.Presence{From: addr, Available: true})
		}()
	}
	return nil
}

// Close implements transports.Session. Mails already queued are still sent
// while ctx allows.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.out)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	stopWatch := context.AfterFunc(ctx, s.cancel)
	defer stopWatch()
	s.stopWatcher()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		return ctx.Err()
	}
}

// deliver hands an event to the gateway; false means it was not delivered.
func (s *Session) deliver(ev transports.Event) bool {
	ctx, cancel := context.WithTimeout(s.ctx, deliverTimeout)
	defer cancel()
	if err := s.sink.Deliver(ctx, ev); err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("email: event not delivered", "err", err)
		}
		return false
	}
	return true
}

// setConnected reports the mailbox's state as the transport's presence and
// the contacts' availability.
func (s *Session) setConnected(on bool, reason string) {
	s.mu.Lock()
	changed := s.connected != on
	s.connected = on
	contacts := make([]string, 0, len(s.watched))
	for c := range s.watched {
		contacts = append(contacts, c)
	}
	s.mu.Unlock()
	sort.Strings(contacts)
	s.deliver(transports.Status{Connected: on, Message: reason})
	if !changed {
		return
	}
	for _, c := range contacts {
		s.deliver(transports.Presence{From: c, Available: on})
	}
}

// flag reads a stored boolean, or the default when there is none.
func flag(v string, def bool) bool {
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	return def
}
