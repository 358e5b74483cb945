package email

import (
	"cmp"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"passerelle.dev/passerelle/transports"
	"passerelle.dev/passerelle/transports/backoff"
)

// fetchChunk is how many mails are fetched per round trip.
const fetchChunk = 20

var errNotDelivered = errors.New("email: the gateway did not take the mail")

// watchLoop keeps a connection to the INBOX until Close, reconnecting with
// a jittered, doubling wait. A connection that the guard failed does not
// reset the wait, so a server that breaks a bound every time is tried ever
// less often.
func (s *Session) watchLoop(c *imapConn) {
	defer s.wg.Done()
	failures := 0
	tripped := false // the guard failed the last connection
	for {
		if c == nil {
			var err error
			c, err = s.acct.dialIMAP(s.watchCtx, s.imapOptions())
			if err != nil {
				if s.watchCtx.Err() != nil {
					return
				}
				failures++
				s.log.Warn("email: IMAP login failed", "err", err)
				s.setConnected(false, "Mailbox not connected: "+errText(err))
				if !s.sleep(failures) {
					return
				}
				continue
			}
		}
		err := s.watchSafely(c.Client, func() {
			if !tripped {
				failures = 0
			}
		})
		c.Close()
		err = c.explain(err)
		tripped = errors.Is(err, errIMAPLimit)
		c = nil
		if s.watchCtx.Err() != nil {
			return
		}
		failures++
		s.log.Warn("email: IMAP connection lost", "err", err)
		s.setConnected(false, "Mailbox connection lost ("+errText(err)+"); reconnecting.")
		if !s.sleep(failures) {
			return
		}
	}
}

// sleep waits before the next attempt; false means the session ended.
func (s *Session) sleep(failures int) bool {
	select {
	case <-time.After(backoff.Wait(failures, s.t.cfg.ReconnectMin.Duration, s.t.cfg.ReconnectMax.Duration)):
		return true
	case <-s.watchCtx.Done():
		return false
	}
}

// watchSafely is watch with a panic turned into a lost connection: the
// watcher reconnects after the usual wait, fetching one mail at a time.
// (Panics while fetching or handling one mail cost that mail: see
// fetchMeta and handleMail.)
func (s *Session) watchSafely(c *imapclient.Client, connected func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("email: panic in the mailbox watcher", "panic", r, "stack", string(debug.Stack()))
			s.careful = true
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return s.watch(c, connected)
}

// watch follows the INBOX on one connection until it fails or the session
// ends.
func (s *Session) watch(c *imapclient.Client, connected func()) error {
	cur, err := s.syncCursor(c)
	if err != nil {
		return err
	}
	connected()
	s.setConnected(true, "")
	canIdle := c.Caps().Has(imap.CapIdle)
	s.log.Debug("email: watching INBOX", "uidvalidity", cur.Validity, "last_uid", cur.Last, "idle", canIdle)
	for {
		if err := s.catchUp(c, &cur); err != nil {
			return err
		}
		if err := s.waitForMail(c, canIdle); err != nil {
			return err
		}
	}
}

// syncCursor selects INBOX and returns the stored position in it. With
// none stored yet (the first login), the position is the one registration
// saw, else after the mail already there; a position in another mailbox
// generation starts after the mail already there.
func (s *Session) syncCursor(c *imapclient.Client) (cursor, error) {
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return cursor{}, fmt.Errorf("select INBOX: %w", err)
	}
	cur, err := s.loadCursor()
	if err != nil {
		return cur, err
	}
	key := s.acct.mailboxKey()
	if cur.Mailbox != "" && cur.Mailbox != key {
		// The registration moved to another mailbox.
		cur = cursor{}
	}
	if cur.Validity == 0 && s.regStart.Validity == sel.UIDValidity && s.regStart.Mailbox == key {
		return s.regStart, s.saveCursor(s.regStart)
	}
	if cur.Validity == sel.UIDValidity {
		if cur.Mailbox == "" {
			cur.Mailbox = key
			return cur, s.saveCursor(cur)
		}
		return cur, nil
	}
	last, err := lastUID(c, sel)
	if err != nil {
		return cursor{}, err
	}
	if cur.Validity != 0 {
		// The server renumbered the mailbox: old UIDs mean nothing now.
		// Start after the current mail rather than flood the user.
		s.log.Warn("email: UIDVALIDITY changed; skipping the mail already there", "old", cur.Validity, "new", sel.UIDValidity, "last_uid", last)
		s.deliver(transports.Message{Type: transports.Chat, Body: "Your mailbox was renumbered by the mail server (UIDVALIDITY changed). Mail that was already there is not delivered again; new mail arrives as before."})
	}
	cur = cursor{Validity: sel.UIDValidity, Last: last, Mailbox: key}
	return cur, s.saveCursor(cur)
}

// lastUID is the UID of the newest mail in the selected mailbox.
func lastUID(c *imapclient.Client, sel *imap.SelectData) (uint32, error) {
	if sel.UIDNext > 0 {
		return uint32(sel.UIDNext) - 1, nil
	}
	res, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return 0, fmt.Errorf("search INBOX: %w", err)
	}
	var last uint32
	for _, u := range res.AllUIDs() {
		last = max(last, uint32(u))
	}
	return last, nil
}

// waitForMail returns when the server announces new mail (IDLE) or, on
// servers without IDLE, after the poll interval.
func (s *Session) waitForMail(c *imapclient.Client, canIdle bool) error {
	if !canIdle {
		select {
		case <-time.After(s.t.cfg.PollInterval.Duration):
		case <-s.wake:
		case <-s.watchCtx.Done():
			return s.watchCtx.Err()
		case <-c.Closed():
			return errors.New("connection closed")
		}
		return c.Noop().Wait()
	}
	idle, err := c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	var stopErr error
	select {
	case <-s.wake:
	case <-s.watchCtx.Done():
		stopErr = s.watchCtx.Err()
	case <-c.Closed():
		stopErr = errors.New("connection closed")
	}
	if err := idle.Close(); err != nil && stopErr == nil {
		stopErr = fmt.Errorf("idle: %w", err)
	}
	if err := idle.Wait(); err != nil && stopErr == nil {
		stopErr = fmt.Errorf("idle: %w", err)
	}
	return stopErr
}

// catchUp delivers every mail after the cursor, in UID order, advancing
// the cursor durably after each one is in the XMPP server's hands or was
// skipped with a notice to the user.
func (s *Session) catchUp(c *imapclient.Client, cur *cursor) error {
	res, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(cur.Last + 1), Stop: 0}}}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("search new mail: %w", err)
	}
	var uids []imap.UID
	for _, u := range res.AllUIDs() {
		if uint32(u) > cur.Last { // "n:*" includes the last mail even below n
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	if len(uids) > 0 {
		s.log.Debug("email: new mail", "count", len(uids), "after_uid", cur.Last)
	}
	advance := func(uid uint32) error {
		cur.Last = uid
		return s.saveCursor(*cur)
	}
	for len(uids) > 0 {
		n := fetchChunk
		if s.careful {
			n = 1 // after a failed fetch: find the mail that fails
		}
		chunk := uids[:min(len(uids), n)]
		uids = uids[len(chunk):]
		if len(chunk) == 1 && s.fetchFails[s.strikeKey(cur.Validity, chunk[0])] >= maxStrikes {
			// This mail failed every time it was fetched.
			if !s.skipMail(cur.Validity, uint32(chunk[0]), "", "it could not be fetched from the mail server") {
				return errNotDelivered
			}
			if err := advance(uint32(chunk[0])); err != nil {
				return err
			}
			continue
		}
		msgs, err := s.fetchMeta(c, chunk)
		if err != nil {
			if len(chunk) == 1 {
				s.strike(s.fetchFails, cur.Validity, chunk[0])
			}
			s.careful = true
			return err
		}
		slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(a.UID, b.UID) })
		for _, m := range msgs {
			if uint32(m.UID) <= cur.Last {
				continue
			}
			if err := s.handleMail(c, cur.Validity, m); err != nil {
				return err
			}
			if err := advance(uint32(m.UID)); err != nil {
				return err
			}
		}
		// Mails expunged between the search and the fetch are passed over.
		if last := uint32(chunk[len(chunk)-1]); last > cur.Last {
			if err := advance(last); err != nil {
				return err
			}
		}
	}
	s.careful = false
	return nil
}

// handleMail delivers one mail as a chat message, or skips it with a
// notice; an error means it must be tried again (the connection failed, or
// the gateway did not take the mail nor the notice). A mail filtered out
// counts as handled. A panic costs this mail only.
func (s *Session) handleMail(c *imapclient.Client, validity uint32, m *imapclient.FetchMessageBuffer) (err error) {
	uid := uint32(m.UID)
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("email: panic while handling a mail", "uid", uid, "panic", r, "stack", string(debug.Stack()))
			err = nil
			if !s.skipMail(validity, uid, subjectOf(m), "the gateway failed on it (an internal error)") {
				err = errNotDelivered
			}
		}
	}()
	f := fetchedOf(m)
	if tp := f.plan.text; tp != nil {
		if f.body, err = fetchText(c, m.UID, *tp, s.t.cfg.MaxBody); err != nil {
			s.strike(s.fetchFails, validity, m.UID)
			s.careful = true
			return err
		}
	}
	in, err := buildIncoming(f, s.t.cfg.MaxBody)
	if hook := testHookMail.Load(); hook != nil {
		(*hook)(in.subject)
	}
	if err != nil {
		if !s.skipMail(validity, uid, in.subject, err.Error()) {
			return errNotDelivered
		}
		return nil
	}
	if (in.list && s.skipLists) || (in.auto && s.skipAuto) {
		s.log.Debug("email: mail filtered out", "uid", uid, "list", in.list, "automated", in.auto)
		return nil
	}
	thread := s.thr.threadOf(s.watchCtx, in.msgID, in.refs)
	msg := transports.Message{
		From:    in.from,
		ID:      fmt.Sprintf("mail-%d-%d", validity, uid), // the same on a redelivery, so clients can tell
		Type:    transports.Chat,
		Subject: in.subject,
		Body:    in.text,
		Thread:  cutString(thread, maxMsgID),
	}
	// Record the thread first: the user may answer as soon as the message
	// shows, and the answer must refer to this mail.
	if err := s.thr.add(s.watchCtx, msg.Thread, in.msgID, in.subject); err != nil {
		s.log.Warn("email: cannot record the thread", "err", err)
	}
	if s.deliver(msg) {
		s.forget(validity, m.UID)
		return nil
	}
	if s.watchCtx.Err() != nil {
		return errNotDelivered
	}
	// The gateway refused the mail. Either it is down, and the notice
	// below fails as well, or this mail is what it cannot take: after a
	// few tries, skip it if the notice gets through.
	if s.strike(s.deliverFails, validity, m.UID) >= maxStrikes {
		// Once more first, in case the gateway just came back.
		if s.deliver(msg) {
			s.forget(validity, m.UID)
			return nil
		}
		if s.skipMail(validity, uid, in.subject, "the chat server did not take it") {
			return nil
		}
	}
	return errNotDelivered
}

// testHookMail, if set (by tests), runs on every mail after it is parsed.
var testHookMail atomic.Pointer[func(subject string)]

// skipMail tells the user that a mail is not shown in chat, naming it by
// UID and subject; true means the notice was delivered, so the position
// may move past the mail.
func (s *Session) skipMail(validity, uid uint32, subject, why string) bool {
	text := fmt.Sprintf("A mail could not be shown here and was skipped (UID %d", uid)
	if subject != "" {
		text += ", subject “" + cutString(subject, 100) + "”"
	}
	text += "): " + why + ". It is still in your mailbox."
	ok := s.deliver(transports.Message{
		ID:   fmt.Sprintf("mail-%d-%d-skipped", validity, uid),
		Type: transports.Chat,
		Body: text,
	})
	if ok {
		s.log.Warn("email: mail skipped", "uid", uid, "why", why)
		s.forget(validity, imap.UID(uid))
	}
	return ok
}

// subjectOf is the subject of a fetched mail, for notices; never panics.
func subjectOf(m *imapclient.FetchMessageBuffer) (subject string) {
	defer func() {
		if recover() != nil {
			subject = ""
		}
	}()
	return readSubject(m.FindBodySection(secSubject))
}

func (s *Session) strikeKey(validity uint32, uid imap.UID) uint64 {
	return uint64(validity)<<32 | uint64(uid)
}

// strike counts a failure of one mail in fails and returns the count.
func (s *Session) strike(fails map[uint64]int, validity uint32, uid imap.UID) int {
	k := s.strikeKey(validity, uid)
	fails[k]++
	return fails[k]
}

// forget drops the failures of a mail that was handled.
func (s *Session) forget(validity uint32, uid imap.UID) {
	k := s.strikeKey(validity, uid)
	delete(s.fetchFails, k)
	delete(s.deliverFails, k)
}

// errText is an error as users may see it.
func errText(err error) string {
	if text, ok := transports.TextOf(err); ok {
		return text
	}
	return shortErr(err)
}
