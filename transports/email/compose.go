package email

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
)

// maxReferences bounds the References header of a reply.
const maxReferences = 10

// outgoing is a mail ready to send, with what the thread store needs.
type outgoing struct {
	to      string
	thread  string
	msgID   string
	subject string // without "Re: "
	raw     []byte
}

// compose builds an RFC 5322 text mail from the user to one address. The
// thread, if known, makes it a reply in that conversation. No value can add
// a header: line breaks in the subject are folded away and addresses were
// parsed.
func (t *Transport) compose(from, to, subject, body, thread string, th threadInfo) (outgoing, error) {
	msgID := newMessageID(from)
	base := cleanHeader(subject)
	if base == "" {
		base = th.Subject
	}
	full := base
	switch {
	case base == "":
		base, full = t.cfg.DefaultSubject, t.cfg.DefaultSubject
	case subject == "" && th.Last != "" && !hasReplyPrefix(base):
		full = "Re: " + base
	}
	var h mail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	h.SetSubject(full)
	h.SetMessageID(msgID)
	if th.Last != "" {
		h.SetMsgIDList("In-Reply-To", []string{th.Last})
		refs := append(append([]string(nil), th.Refs...), th.Last)
		if len(refs) > maxReferences {
			refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
		}
		h.SetMsgIDList("References", refs)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	h.Set("User-Agent", "Passerelle (XMPP gateway)")
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return outgoing{}, fmt.Errorf("email: compose: %w", err)
	}
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := w.Write([]byte(body)); err != nil {
		return outgoing{}, fmt.Errorf("email: compose: %w", err)
	}
	if err := w.Close(); err != nil {
		return outgoing{}, fmt.Errorf("email: compose: %w", err)
	}
	return outgoing{to: to, thread: thread, msgID: msgID, subject: base, raw: buf.Bytes()}, nil
}

// cleanHeader makes s one header line: line breaks and control characters
// become spaces.
func cleanHeader(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func hasReplyPrefix(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "re:") || strings.HasPrefix(l, "aw:") || strings.HasPrefix(l, "sv:")
}

// stripReply removes reply prefixes, to name a thread by its subject.
func stripReply(s string) string {
	for hasReplyPrefix(s) {
		s = strings.TrimSpace(s[3:])
	}
	return s
}

// newMessageID makes a unique Message-ID on the sender's domain.
func newMessageID(from string) string {
	_, domain, _ := strings.Cut(from, "@")
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "passerelle." + hex.EncodeToString(b[:]) + "@" + domain
}
