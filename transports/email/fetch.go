package email

import (
	"fmt"
	"runtime/debug"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The header fields fetched, each group with its own length limit so that
// a huge field cannot push the sender out of reach.
var (
	secSender  = headerFields(maxSenderHeader, "From", "Sender")
	secSubject = headerFields(maxSubjectHeader, "Subject")
	secMeta    = headerFields(maxMetaHeader, "Message-ID", "References", "In-Reply-To", "List-Id", "List-Unsubscribe", "List-Post", "Precedence", "Auto-Submitted")
)

func headerFields(limit int64, names ...string) *imap.FetchItemBodySection {
	return &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: names, Partial: &imap.SectionPartial{Size: limit}, Peek: true}
}

// fetchMeta fetches what decides how a mail is shown: its size, its
// structure and bounded header fields. Nothing of the body is read.
func (s *Session) fetchMeta(c *imapclient.Client, uids []imap.UID) (msgs []*imapclient.FetchMessageBuffer, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("email: panic while fetching mail", "uids", len(uids), "first_uid", uids[0], "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("fetch: internal error")
		}
	}()
	opts := &imap.FetchOptions{
		UID:           true,
		RFC822Size:    true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{secSender, secSubject, secMeta},
	}
	msgs, err = c.Fetch(imap.UIDSetNum(uids...), opts).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return msgs, nil
}

// textLimit is how much of a text part is fetched: enough for maxBody
// characters after transfer decoding (quoted-printable may take three
// bytes per byte), more for HTML, whose markup is dropped.
func textLimit(tp textPart, maxBody int) int64 {
	limit := int64(4*maxBody + 4096)
	if tp.html {
		limit = maxHTMLFetch
	}
	return min(limit, int64(tp.size))
}

// fetchText fetches the beginning of a mail's text part. A mail expunged
// meanwhile yields nothing.
func fetchText(c *imapclient.Client, uid imap.UID, tp textPart, maxBody int) ([]byte, error) {
	limit := textLimit(tp, maxBody)
	if limit <= 0 {
		return nil, nil
	}
	sec := &imap.FetchItemBodySection{Part: tp.path, Partial: &imap.SectionPartial{Size: limit}, Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch the text of mail %d: %w", uid, err)
	}
	for _, m := range msgs {
		if m.UID == uid {
			return m.FindBodySection(sec), nil
		}
	}
	return nil, nil
}

// fetchedOf gathers what was fetched of a mail.
func fetchedOf(m *imapclient.FetchMessageBuffer) fetched {
	return fetched{
		size:    m.RFC822Size,
		sender:  m.FindBodySection(secSender),
		subject: m.FindBodySection(secSubject),
		meta:    m.FindBodySection(secMeta),
		plan:    planMail(m.BodyStructure),
	}
}
