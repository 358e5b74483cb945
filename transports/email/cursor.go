package email

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// cursorKey is the state key of the INBOX position.
const cursorKey = "inbox"

// fieldInboxStart is a stored registration value that the user never
// sees: the INBOX position when registration proved the credentials, so
// that mail arriving before the first login is delivered too.
const fieldInboxStart = "inbox_start"

// cursor is the durable position in the INBOX: every mail up to Last (in
// the mailbox generation Validity) was handed to the XMPP server or
// skipped with a notice.
type cursor struct {
	Validity uint32 `json:"uidvalidity"`
	Last     uint32 `json:"last_uid"`
	// Mailbox names the account the position is in (server and login), so
	// that a registration moved to another mailbox starts afresh. Empty in
	// positions stored before it existed.
	Mailbox string `json:"mailbox,omitempty"`
}

// mailboxKey names the account's INBOX for cursors.
func (a account) mailboxKey() string {
	return a.imap.host + ":" + strconv.Itoa(a.imap.port) + "/" + a.username
}

// inboxPosition examines INBOX and returns the position after its newest
// mail.
func inboxPosition(c *imapclient.Client, a account) (cursor, error) {
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return cursor{}, fmt.Errorf("select INBOX: %w", err)
	}
	last, err := lastUID(c, sel)
	if err != nil {
		return cursor{}, err
	}
	return cursor{Validity: sel.UIDValidity, Last: last, Mailbox: a.mailboxKey()}, nil
}

// parseStart reads a fieldInboxStart value; the zero cursor if none.
func parseStart(v string) cursor {
	var c cursor
	if v == "" || json.Unmarshal([]byte(v), &c) != nil {
		return cursor{}
	}
	return c
}

func (c cursor) String() string {
	raw, _ := json.Marshal(c)
	return string(raw)
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
