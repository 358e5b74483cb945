package email

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"passerelle.dev/passerelle/transports/xmltext"
)

// serverView is what an IMAP server hands the gateway for raw: the same
// fetch items, extracted by go-imap's server code.
func serverView(raw []byte, maxBody int) fetched {
	bs := imapserver.ExtractBodyStructure(bytes.NewReader(raw))
	defaultTypes(bs, 0)
	section := func(sec *imap.FetchItemBodySection) []byte {
		return imapserver.ExtractBodySection(bytes.NewReader(raw), sec)
	}
	f := fetched{size: int64(len(raw)), sender: section(secSender), subject: section(secSubject), meta: section(secMeta)}
	f.plan = planMail(bs)
	if tp := f.plan.text; tp != nil {
		f.body = section(&imap.FetchItemBodySection{Part: tp.path, Partial: &imap.SectionPartial{Size: textLimit(*tp, maxBody)}})
	}
	return f
}

// defaultTypes gives untyped parts text/plain, as IMAP servers do.
func defaultTypes(bs imap.BodyStructure, depth int) {
	if depth > 100 {
		return
	}
	switch p := bs.(type) {
	case *imap.BodyStructureSinglePart:
		if p.Type == "" {
			p.Type, p.Subtype = "text", "plain"
		}
		if p.Encoding == "" {
			p.Encoding = "7bit"
		}
	case *imap.BodyStructureMultiPart:
		for _, c := range p.Children {
			defaultTypes(c, depth+1)
		}
	}
}

func parseRaw(raw string, maxBody int) (incoming, error) {
	return buildIncoming(serverView([]byte(raw), maxBody), maxBody)
}

func TestParseMail(t *testing.T) {
	for _, c := range []struct {
		name, raw, from, subject, text string
		list, auto                     bool
	}{
		{
			name: "plain", from: "bob@example.com", subject: "Hello", text: "Hi there",
			raw: "From: Bob <Bob@Example.com>\r\nSubject: Hello\r\nMessage-ID: <1@x>\r\n\r\nHi there\r\n",
		},
		{
			name: "latin-1", from: "bob@example.com", subject: "Café", text: "Crème brûlée",
			raw: "From: bob@example.com\r\nSubject: =?iso-8859-1?q?Caf=E9?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCr=E8me br=FBl=E9e\r\n",
		},
		{
			name: "html only", from: "bob@example.com", subject: "News", text: "*Big* news",
			raw: "From: bob@example.com\r\nSubject: News\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p><b>Big</b> news</p><script>x()</script></body></html>\r\n",
		},
		{
			name: "attachment", from: "bob@example.com", subject: "Report", text: "See attached\n\nAttachments:\n• report.pdf (5 bytes)",
			raw: "From: bob@example.com\r\nSubject: Report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n",
		},
		{
			name: "alternative", from: "bob@example.com", subject: "Alt", text: "plain version",
			raw: "From: bob@example.com\r\nSubject: Alt\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n--b--\r\n",
		},
		{
			name: "list", from: "list@example.com", subject: "Digest", text: "x", list: true,
			raw: "From: list@example.com\r\nSubject: Digest\r\nList-Id: <l.example.com>\r\n\r\nx\r\n",
		},
		{
			name: "automated", from: "noreply@example.com", subject: "Receipt", text: "x", auto: true,
			raw: "From: noreply@example.com\r\nSubject: Receipt\r\nAuto-Submitted: auto-generated\r\n\r\nx\r\n",
		},
		{
			name: "control characters", from: "bob@example.com", subject: "a b", text: "one\ntwo\nthree",
			raw: "From: bob@example.com\r\nSubject: a\x1bb\r\n\r\none\x00\r\ntwo\rthree\x07\r\n",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, err := parseRaw(c.raw, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if in.from != c.from || in.subject != c.subject || in.text != c.text || in.list != c.list || in.auto != c.auto {
				t.Errorf("got %+v", in)
			}
		})
	}
	long, _ := parseRaw("From: a@b.com\r\n\r\n"+strings.Repeat("é", 100), 51)
	if !strings.Contains(long.text, "cut") || !strings.HasPrefix(long.text, strings.Repeat("é", 25)+"\n") {
		t.Errorf("long mail: %q", long.text)
	}
}

// TestUnusableSender: a mail whose sender cannot be written to fails
// with errNoSender, still naming its subject for the notice.
func TestUnusableSender(t *testing.T) {
	for name, from := range map[string]string{
		"none":       "",
		"group":      "From: undisclosed-recipients:;\r\n",
		"no address": "From: just a name\r\n",
		"too long":   "From: " + strings.Repeat("a", 1100) + "@example.com\r\n",
		"cut":        "From: " + strings.Repeat("x", 5000) + "@example.com\r\n",
	} {
		in, err := parseRaw(from+"Subject: hello\r\n\r\nbody\r\n", 1000)
		if err != errNoSender || in.subject != "hello" {
			t.Errorf("%s: %+v, %v", name, in, err)
		}
	}
	// The Sender field stands in for an unusable From.
	in, err := parseRaw("From: nobody\r\nSender: real@example.com\r\n\r\nx\r\n", 1000)
	if err != nil || in.from != "real@example.com" {
		t.Errorf("Sender: %+v, %v", in, err)
	}
	// A From cut by the fetch limit is dropped, not read as a shorter
	// (wrong) address.
	f := fetched{sender: []byte("From: alice@example.company")}
	f.sender = f.sender[:len("From: alice@example.co")]
	if in, err := parseHeader(fetched{sender: append(f.sender, make([]byte, maxSenderHeader)...)}); err == nil {
		t.Errorf("cut sender read as %q", in.from)
	}
}

// hostile builds the mails of the issue, smaller or full size.
func hostileAttachments(n, nameLen int) string {
	var b strings.Builder
	b.WriteString("From: bob@example.com\r\nSubject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
	for i := range n {
		name := fmt.Sprintf("%04d-%s.txt", i, strings.Repeat("n", nameLen))
		fmt.Fprintf(&b, "--zz\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n filename=\"%s\"\r\n\r\nx\r\n", name)
	}
	b.WriteString("--zz--\r\n")
	return b.String()
}

func hostileNested(depth int) string {
	var b strings.Builder
	b.WriteString("From: bob@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i+1)
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n", depth)
	for i := depth; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

// TestHostileMailBounded: whatever the mail, the chat text stays within
// its bounds and names what it leaves out.
func TestHostileMailBounded(t *testing.T) {
	in, err := parseRaw(hostileAttachments(4000, 190), 32<<10)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(in.text, "hello\n\nAttachments:\n• 0000-") || !strings.Contains(in.text, "… and 3,980 more") || strings.Count(in.text, "•") != maxListed {
		t.Errorf("4,000 attachments: %q", in.text)
	}
	if n := xmltext.EscapedLen(in.text); n > 8<<10 {
		t.Errorf("4,000 attachments: %d bytes of text", n)
	}

	in, err = parseRaw(hostileNested(200), 32<<10)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(in.text, "more parts") {
		t.Errorf("nested 200 deep: %q", in.text)
	}

	huge := "From: bob@example.com\r\nSubject: " + strings.Repeat("s", 1<<20) + "\r\n\r\n" + strings.Repeat("<&\n", 3<<20) + "\r\n"
	in, err = parseRaw(huge, maxBodyCap)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.subject) > maxSubject || !strings.HasSuffix(in.subject, "…") {
		t.Errorf("subject of %d bytes", len(in.subject))
	}
	if n := xmltext.EscapedLen(in.text) + xmltext.EscapedLen(in.subject); n > maxEscapedText || !strings.Contains(in.text, "cut: the mail is longer") {
		t.Errorf("escaped text of %d bytes, note: %v", n, strings.Contains(in.text, "cut"))
	}
}

// FuzzParseMail: any mail up to 256 KiB is read in bounded time into a
// bounded chat message, without a panic.
func FuzzParseMail(f *testing.F) {
	f.Add([]byte("From: bob@example.com\r\nSubject: x\r\n\r\nbody"))
	f.Add([]byte("From: a@b.c\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/html\r\n\r\n<p>x\r\n--z--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 256<<10 {
			return
		}
		view := serverView(raw, 200) // the server's part, not timed
		start := time.Now()
		in, err := buildIncoming(view, 200)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%d bytes read in %v", len(raw), d)
		}
		if err != nil {
			return
		}
		if in.from == "" || in.text == "" {
			t.Fatalf("empty result %+v", in)
		}
		if n := xmltext.EscapedLen(in.text); n > 200*6+xmltext.EscapedLen(view.plan.listing())+400 {
			t.Fatalf("text of %d escaped bytes: %q", n, in.text)
		}
		if len(in.subject) > maxSubject || len(in.msgID) > maxMsgID || len(in.refs) > maxRefs {
			t.Fatalf("unbounded header: %+v", in)
		}
	})
}

// BenchmarkPlanNested shows the structure walk linear in the parts, and
// bounded in depth: 10,000 levels cost what maxDepth levels cost.
func BenchmarkPlanNested(b *testing.B) {
	for _, depth := range []int{10, 1000, 10000} {
		var bs imap.BodyStructure = &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Size: 1}
		for range depth {
			bs = &imap.BodyStructureMultiPart{Subtype: "mixed", Children: []imap.BodyStructure{bs, &imap.BodyStructureSinglePart{Type: "image", Subtype: "png", Size: 1}}}
		}
		b.Run(fmt.Sprint(depth), func(b *testing.B) {
			for b.Loop() {
				planMail(bs)
			}
		})
	}
}
