package testserver

import (
	"cmp"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"passerelle.dev/passerelle/internal/tb"
)

// Messages returns every message in user's INBOX, raw, in UID order. It
// logs in over IMAP, opens the INBOX with EXAMINE and fetches
// BODY.PEEK[], so it changes no flags.
func (m *Mail) Messages(t tb.TB, user, password string) [][]byte {
	t.Helper()
	msgs, err := m.messages(user, password)
	if err != nil {
		t.Fatalf("messages of %s: %v\n%s", user, err, m.Log())
	}
	return msgs
}

func (m *Mail) messages(user, password string) ([][]byte, error) {
	c, err := imapclient.DialInsecure(m.IMAPAddr(), nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return nil, err
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, err
	}
	if sel.NumMessages == 0 {
		return nil, c.Logout().Wait()
	}
	section := &imap.FetchItemBodySection{Peek: true}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	bufs, err := c.Fetch(all, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(bufs, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(a.UID, b.UID) })
	msgs := make([][]byte, 0, len(bufs))
	for _, b := range bufs {
		msgs = append(msgs, b.FindBodySection(section))
	}
	return msgs, c.Logout().Wait()
}
