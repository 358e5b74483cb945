package email

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// textPart is the part of a mail shown as its text.
type textPart struct {
	path     []int // IMAP section path; [1] for a single-part mail
	html     bool
	encoding string
	charset  string
	size     uint32 // as stored, transfer-encoded
}

// mailPlan is what the gateway learns of a mail from its BODYSTRUCTURE:
// which part to fetch as text and what to list as attachments.
type mailPlan struct {
	text       *textPart
	named      []string // the first maxListed attachments, "name (size)"
	more       int      // attachments beyond those
	unexamined bool     // parts deeper or more numerous than walked
}

// planMail walks a mail's structure, at most maxDepth deep, in time
// linear in its parts; parts beyond the first maxParts are only counted. The first plain-text part that
// is not an attachment is the text; failing that, the first HTML one.
func planMail(bs imap.BodyStructure) mailPlan {
	var p mailPlan
	var html *textPart
	walked := 0
	var walk func(bs imap.BodyStructure, path []int, depth int)
	walk = func(bs imap.BodyStructure, path []int, depth int) {
		walked++
		switch part := bs.(type) {
		case *imap.BodyStructureMultiPart:
			if depth >= maxDepth {
				p.unexamined = true
				return
			}
			for i, child := range part.Children {
				walk(child, append(path[:len(path):len(path)], i+1), depth+1)
			}
		case *imap.BodyStructureSinglePart:
			if len(path) == 0 {
				path = []int{1} // the body of a single-part mail
			}
			if walked > maxParts {
				p.more++ // counted, not examined
				return
			}
			mt := part.MediaType()
			inline := !isAttachment(part)
			switch {
			case inline && mt == "text/plain" && p.text == nil:
				p.text = newTextPart(part, path, false)
				return
			case inline && mt == "text/html" && html == nil:
				html = newTextPart(part, path, true)
				return
			}
			p.addAttachment(part)
		default:
			p.unexamined = true
		}
	}
	if bs != nil {
		walk(bs, nil, 0)
	}
	if p.text == nil {
		p.text = html
	}
	return p
}

func newTextPart(bs *imap.BodyStructureSinglePart, path []int, html bool) *textPart {
	return &textPart{path: path, html: html, encoding: strings.ToLower(bs.Encoding), charset: bs.Params["charset"], size: bs.Size}
}

// isAttachment reports whether a part is meant as a file rather than text.
func isAttachment(bs *imap.BodyStructureSinglePart) bool {
	if d := bs.Disposition(); d != nil && strings.EqualFold(d.Value, "attachment") {
		return true
	}
	return bs.Filename() != ""
}

func (p *mailPlan) addAttachment(bs *imap.BodyStructureSinglePart) {
	if len(p.named) >= maxListed {
		p.more++
		return
	}
	name := cleanHeader(bs.Filename())
	if name == "" && bs.MessageRFC822 != nil && bs.MessageRFC822.Envelope != nil {
		name = "forwarded mail"
		if s := cleanHeader(bs.MessageRFC822.Envelope.Subject); s != "" {
			name += " “" + cutString(s, maxNameLen) + "”"
		}
	}
	if name == "" {
		name = bs.MediaType()
	}
	p.addName(fmt.Sprintf("%s (%s)", cutString(name, maxNameLen), size(decodedSize(bs))))
}

func (p *mailPlan) addName(s string) {
	if len(p.named) >= maxListed {
		p.more++
		return
	}
	p.named = append(p.named, s)
}

// decodedSize estimates a part's size once its transfer encoding is
// undone: base64 holds 3 bytes in 4, in lines of 76 plus a line break.
func decodedSize(bs *imap.BodyStructureSinglePart) int64 {
	n := int64(bs.Size)
	if strings.EqualFold(bs.Encoding, "base64") {
		n = n * 76 / 78 * 3 / 4
	}
	return n
}

// listing is the attachment list shown under the text.
func (p mailPlan) listing() string {
	if len(p.named) == 0 && !p.unexamined {
		return ""
	}
	var b strings.Builder
	if len(p.named) > 0 {
		b.WriteString("Attachments:\n• " + strings.Join(p.named, "\n• "))
	}
	if p.more > 0 {
		fmt.Fprintf(&b, "\n… and %s more", thousands(p.more))
	}
	if p.unexamined {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("(The mail has more parts, nested deeper or more numerous than the gateway reads.)")
	}
	return b.String()
}

// thousands writes n with comma separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
