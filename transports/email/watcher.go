package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"passerelle.dev/passerelle/internal/backoff"
	"passerelle.dev/passerelle/transports"
)

// cursorKey is the state key of the INBOX position.
const cursorKey = "inbox"

// fetchChunk is how many mails are fetched per round trip.
const fetchChunk = 20

// cursor is the durable position in the INBOX: every mail up to Last (in
// the mailbox generation Validity) was handed to the XMPP server.
type cursor struct {
	Validity uint32 `json:"uidvalidity"`
	Last     uint32 `json:"last_uid"`
}

var errNotDelivered = errors.New("email: the gateway did not take the mail")

// watchLoop keeps a connection to the INBOX until Close, reconnecting with
// a jittered, doubling wait.
func (s *Session) watchLoop(c *imapclient.Client) {
	defer s.wg.Done()
	failures := 0
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
		err := s.watch(c, func() { failures = 0 })
		c.Close()
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
// none stored yet (the first login) or for another mailbox generation, the
// position starts after the mail already there.
func (s *Session) syncCursor(c *imapclient.Client) (cursor, error) {
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return cursor{}, fmt.Errorf("select INBOX: %w", err)
	}
	cur, err := s.loadCursor()
	if err != nil || cur.Validity == sel.UIDValidity {
		return cur, err
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
	cur = cursor{Validity: sel.UIDValidity, Last: last}
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
// the cursor durably after each one is in the XMPP server's hands.
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
	section := &imap.FetchItemBodySection{Peek: true}
	for len(uids) > 0 {
		chunk := uids[:min(len(uids), fetchChunk)]
		uids = uids[len(chunk):]
		msgs, err := c.Fetch(imap.UIDSetNum(chunk...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
		for _, m := range msgs {
			if uint32(m.UID) <= cur.Last {
				continue
			}
			if !s.handleMail(cur.Validity, uint32(m.UID), m.FindBodySection(section)) {
				return errNotDelivered
			}
			cur.Last = uint32(m.UID)
			if err := s.saveCursor(*cur); err != nil {
				return err
			}
		}
		// Mails expunged between the search and the fetch are passed over.
		if last := uint32(chunk[len(chunk)-1]); last > cur.Last {
			cur.Last = last
			if err := s.saveCursor(*cur); err != nil {
				return err
			}
		}
	}
	return nil
}

// handleMail delivers one mail as a chat message; false means the gateway
// did not take it and it must be tried again. A mail that cannot be read or
// is filtered out counts as handled.
func (s *Session) handleMail(validity, uid uint32, raw []byte) bool {
	in, err := parseMail(raw, s.t.cfg.MaxBody)
	if err != nil {
		s.log.Warn("email: unreadable mail skipped", "uid", uid, "err", err)
		return true
	}
	if (in.list && s.skipLists) || (in.auto && s.skipAuto) {
		s.log.Debug("email: mail filtered out", "uid", uid, "list", in.list, "automated", in.auto)
		return true
	}
	thread := s.thr.threadOf(s.watchCtx, in.msgID, in.refs)
	m := transports.Message{
		From:    in.from,
		ID:      fmt.Sprintf("mail-%d-%d", validity, uid), // the same on a redelivery, so clients can tell
		Type:    transports.Chat,
		Subject: in.subject,
		Body:    in.text,
		Thread:  thread,
	}
	// Record the thread first: the user may answer as soon as the message
	// shows, and the answer must refer to this mail.
	if err := s.thr.add(s.watchCtx, thread, in.msgID, in.subject); err != nil {
		s.log.Warn("email: cannot record the thread", "err", err)
	}
	return s.deliver(m)
}

func (s *Session) loadCursor() (cursor, error) {
	var cur cursor
	if s.st == nil {
		return cur, nil
	}
	ctx, cancel := context.WithTimeout(s.watchCtx, 10*time.Second)
	defer cancel()
	raw, err := s.st.Get(ctx, cursorKey)
	if err != nil {
		return cur, fmt.Errorf("email: read the INBOX position: %w", err)
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &cur); err != nil {
			return cursor{}, fmt.Errorf("email: INBOX position unreadable: %w", err)
		}
	}
	return cur, nil
}

func (s *Session) saveCursor(cur cursor) error {
	if s.st == nil {
		return nil
	}
	raw, _ := json.Marshal(cur)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.st.Put(ctx, cursorKey, raw); err != nil {
		return fmt.Errorf("email: save the INBOX position: %w", err)
	}
	return nil
}

// errText is an error as users may see it.
func errText(err error) string {
	if text, ok := transports.TextOf(err); ok {
		return text
	}
	return shortErr(err)
}
