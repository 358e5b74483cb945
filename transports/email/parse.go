package email

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode every charset, not only UTF-8 and ASCII
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/inbucket/html2text"

	"passerelle.dev/passerelle/transports/address"

	"passerelle.dev/passerelle/transports/xmltext"
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

// fetched is what the gateway read of one mail: bounded header fields, its
// size and structure, and the beginning of its text part.
type fetched struct {
	size    int64
	sender  []byte // From and Sender fields
	subject []byte // Subject field
	meta    []byte // ids and list markers
	plan    mailPlan
	body    []byte // the start of plan.text, as stored (transfer-encoded)
}

// errNoSender marks a mail whose sender cannot be written to.
var errNoSender = errors.New("its sender is not a usable address")

// parseHeader fills in from the fetched header fields. A mail without a
// sender that fits in a JID fails with errNoSender; in still holds what
// could be read, for the notice.
func parseHeader(f fetched) (incoming, error) {
	var in incoming
	in.subject = readSubject(f.subject)

	meta := readFields(f.meta, maxMetaHeader)
	if id, err := meta.MessageID(); err == nil && len(id) <= maxMsgID {
		in.msgID = id
	}
	refs, _ := meta.MsgIDList("References")
	irt, _ := meta.MsgIDList("In-Reply-To")
	for _, r := range append(refs, irt...) {
		if r != "" && len(r) <= maxMsgID {
			in.refs = append(in.refs, r)
		}
	}
	if len(in.refs) > maxRefs {
		// Keep the root (the thread's id) and the newest.
		in.refs = append(in.refs[:1], in.refs[len(in.refs)-maxRefs+1:]...)
	}
	in.list = meta.Get("List-Id") != "" || meta.Get("List-Unsubscribe") != "" || meta.Get("List-Post") != ""
	switch strings.ToLower(strings.TrimSpace(meta.Get("Precedence"))) {
	case "list", "bulk", "junk":
		in.list = true
	}
	if a := strings.ToLower(strings.TrimSpace(meta.Get("Auto-Submitted"))); a != "" && a != "no" {
		in.auto = true
	}

	sender := readFields(f.sender, maxSenderHeader)
	for _, field := range []string{"From", "Sender"} {
		if list, err := sender.AddressList(field); err == nil && len(list) > 0 {
			if a, err := parseAddress(list[0].Address); err == nil {
				if _, err := address.Encode(a); err == nil {
					in.from = a
					break
				}
			}
		}
	}
	if in.from == "" {
		return in, errNoSender
	}
	return in, nil
}

// readFields parses header fields fetched with a length limit. When the
// limit was reached the last field may be cut short, and a cut address or
// id would be wrong rather than missing: it is dropped.
func readFields(raw []byte, limit int) mail.Header {
	if len(raw) >= limit {
		raw = raw[:lastFieldStart(raw)]
	}
	h, _ := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n\r\n"))))
	return mail.Header{Header: message.Header{Header: h}}
}

// readSubject reads the fetched Subject field; one cut by the fetch limit
// is shown cut.
func readSubject(raw []byte) string {
	h, _ := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n\r\n"))))
	mh := mail.Header{Header: message.Header{Header: h}}
	subject, _ := mh.Subject()
	subject = cutString(cleanHeader(subject), maxSubject-len("…"))
	if len(raw) >= maxSubjectHeader && !strings.HasSuffix(subject, "…") {
		subject += "…"
	}
	return subject
}

// lastFieldStart is the offset of the last line that starts a field.
func lastFieldStart(raw []byte) int {
	for i := len(raw) - 1; i > 0; i-- {
		if raw[i-1] == '\n' && raw[i] != ' ' && raw[i] != '\t' {
			return i
		}
	}
	return 0
}

// buildIncoming turns a fetched mail into what the chat message shows.
func buildIncoming(f fetched, maxBody int) (incoming, error) {
	in, err := parseHeader(f)
	if err != nil {
		return in, err
	}
	text := ""
	partial := false
	if tp := f.plan.text; tp != nil {
		text = decodeText(f.body, *tp)
		partial = int64(len(f.body)) < int64(tp.size)
	}
	in.text = renderText(text, partial, f, maxBody, maxEscapedText-xmltext.EscapedLen(in.subject)-2*maxMsgID*6)
	return in, nil
}

// decodeText decodes the transfer encoding and charset of a text part,
// and converts HTML to text. A part cut short decodes as far as it goes.
func decodeText(raw []byte, tp textPart) string {
	h := message.Header{}
	ct := "text/plain"
	if tp.html {
		ct = "text/html"
	}
	params := map[string]string{}
	if tp.charset != "" {
		params["charset"] = tp.charset
	}
	if v := mime.FormatMediaType(ct, params); v != "" {
		ct = v
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Transfer-Encoding", tp.encoding)
	var body []byte
	if e, err := message.New(h, bytes.NewReader(raw)); e != nil {
		body, _ = io.ReadAll(e.Body) // what decoded before an error
	} else if err != nil {
		body = raw
	}
	text := string(body)
	if tp.html {
		t, err := html2text.FromString(text, html2text.Options{PrettyTables: false})
		if err != nil {
			return "(an HTML mail that could not be converted to text)"
		}
		text = t
	}
	return cleanText(text)
}

// cleanText makes text valid UTF-8 with "\n" line ends and no control
// characters other than tabs and line breaks.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return '\n'
		case r == '\n' || r == '\t':
			return r
		case r < 0x20 || r == 0x7f || r == 0xFFFE || r == 0xFFFF:
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// renderText is the chat body: the text, cut to maxBody bytes and to
// budget XML-escaped bytes with a note, then the attachments.
func renderText(text string, partial bool, f fetched, maxBody, budget int) string {
	var b strings.Builder
	att := f.plan.listing()
	budget -= xmltext.EscapedLen(att) + 200
	cut, wasCut := xmltext.Cut(text, maxBody, budget)
	b.WriteString(cut)
	if wasCut || partial {
		note := "[… cut: the mail is longer"
		if f.size > 0 {
			note += ", " + size(f.size) + " in all"
		}
		b.WriteString("\n" + note + "]")
	}
	if att != "" {
		b.WriteString("\n\n" + att)
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "(empty mail)"
	}
	return out
}

// cutString cuts s to at most n bytes at a character boundary, marking the cut.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut, _ := xmltext.Cut(s, n-len("…"), 1<<30)
	return cut + "…"
}

// size is a byte count as users read it.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
