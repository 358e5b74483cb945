package email

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode every charset, not only UTF-8 and ASCII
	"github.com/emersion/go-message/mail"
	"github.com/inbucket/html2text"
)

// incoming is a received mail, reduced to what a chat message shows.
type incoming struct {
	from    string // canonical sender address
	subject string
	msgID   string
	refs    []string // References, then In-Reply-To
	text    string
	list    bool // mailing-list mail
	auto    bool // automated mail
}

// maxPartBytes bounds how much of one text part is read.
const maxPartBytes = 1 << 20

// parseMail reads a raw mail. Parts it cannot decode are named, not fatal.
func parseMail(raw []byte, maxBody int) (incoming, error) {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return incoming{}, fmt.Errorf("email: parse: %w", err)
	}
	h := r.Header
	var in incoming
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		in.from, _ = parseAddress(from[0].Address)
	}
	if in.from == "" {
		if s, err := h.AddressList("Sender"); err == nil && len(s) > 0 {
			in.from, _ = parseAddress(s[0].Address)
		}
	}
	if in.from == "" {
		return incoming{}, fmt.Errorf("email: no usable sender address")
	}
	in.subject, _ = h.Subject()
	in.subject = cleanHeader(in.subject)
	in.msgID, _ = h.MessageID()
	in.refs, _ = h.MsgIDList("References")
	if irt, _ := h.MsgIDList("In-Reply-To"); len(irt) > 0 {
		in.refs = append(in.refs, irt...)
	}
	in.list = h.Get("List-Id") != "" || h.Get("List-Unsubscribe") != "" || h.Get("List-Post") != ""
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "list", "bulk", "junk":
		in.list = true
	}
	if a := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); a != "" && a != "no" {
		in.auto = true
	}
	var plain, html strings.Builder
	var attachments []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			if plain.Len() == 0 && html.Len() == 0 {
				return incoming{}, fmt.Errorf("email: parse part: %w", err)
			}
			break
		}
		if p == nil {
			break
		}
		switch ph := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := ph.ContentType()
			body, _ := io.ReadAll(io.LimitReader(p.Body, maxPartBytes))
			switch ct {
			case "text/plain", "":
				plain.Write(body)
			case "text/html":
				html.Write(body)
			default:
				attachments = append(attachments, fmt.Sprintf("%s (%s)", ct, size(len(body))))
			}
		case *mail.AttachmentHeader:
			name, _ := ph.Filename()
			if name == "" {
				name, _, _ = ph.ContentType()
			}
			n, _ := io.Copy(io.Discard, p.Body)
			attachments = append(attachments, fmt.Sprintf("%s (%s)", name, size(int(n))))
		}
	}
	text := strings.TrimSpace(plain.String())
	if text == "" && html.Len() > 0 {
		text, err = html2text.FromString(html.String(), html2text.Options{PrettyTables: false})
		if err != nil {
			text = "(an HTML mail that could not be converted to text)"
		}
		text = strings.TrimSpace(text)
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if len(text) > maxBody {
		cut := maxBody
		for cut > 0 && (text[cut]&0xC0) == 0x80 {
			cut--
		}
		text = text[:cut] + "\n[… cut: the mail is longer]"
	}
	if len(attachments) > 0 {
		text += "\n\nAttachments:\n• " + strings.Join(attachments, "\n• ")
	}
	in.text = strings.TrimSpace(text)
	if in.text == "" {
		in.text = "(empty mail)"
	}
	return in, nil
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
