package gateway

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShrinkStanzaFitsAndSaysSo(t *testing.T) {
	g := &Gateway{cfg: Config{MaxStanzaBytes: DefaultMaxStanzaBytes}, log: newTestLogger(io.Discard)}
	body := strings.Repeat("<é", 300_000) // escapes to 6 bytes per 3
	m := messageOut{From: "f@gw.example.test", To: "u@example.test", ID: "x", Type: "chat",
		Body: body, Subject: strings.Repeat("s", 100_000), Thread: strings.Repeat("t", 1_000_000)}
	var buf bytes.Buffer
	v, direct, err := g.encodeBounded(&buf, m)
	if err != nil || !direct {
		t.Fatalf("encodeBounded: %v (direct %v)", err, direct)
	}
	if buf.Len() > DefaultMaxStanzaBytes {
		t.Fatalf("encoded %d bytes, over %d", buf.Len(), DefaultMaxStanzaBytes)
	}
	cut := v.(messageOut)
	if cut.Thread != "" {
		t.Errorf("a 1 MB thread id was kept: %d bytes", len(cut.Thread))
	}
	kept, note, ok := strings.Cut(cut.Body, "\n[cut: ")
	if !ok || !strings.HasPrefix(body, kept) || !strings.HasSuffix(note, " KB more]") || len(kept) < 10_000 {
		t.Errorf("body cut as %d bytes, note %q", len(kept), note)
	}
	if !strings.Contains(cut.Subject, "[cut: ") {
		t.Errorf("subject not cut with a note: %d bytes", len(cut.Subject))
	}
	// What fits is left alone, byte for byte.
	small := messageOut{From: "f@gw.example.test", To: "u@example.test", ID: "y", Body: "hi <there>"}
	buf.Reset()
	if v, _, err := g.encodeBounded(&buf, small); err != nil || v.(messageOut) != small {
		t.Errorf("a small stanza changed: %+v, %v", v, err)
	}
}

func TestCutNote(t *testing.T) {
	for n, want := range map[int]string{5: "\n[cut: 5 bytes more]", 1500: "\n[cut: 2 KB more]", 2_000_000: "\n[cut: 1.9 MB more]"} {
		if got := cutNote(n); got != want {
			t.Errorf("cutNote(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestUncuttableStanzaIsRefused(t *testing.T) {
	g := &Gateway{cfg: Config{MaxStanzaBytes: MinMaxStanzaBytes}, log: newTestLogger(io.Discard)}
	// A huge address cannot be cut: the stanza is refused, not written.
	p := presenceOut{From: "f@gw.example.test/" + strings.Repeat("n", 10_000), To: "u@example.test", Status: "x"}
	var buf bytes.Buffer
	_, _, err := g.encodeBounded(&buf, p)
	var tl *tooLargeError
	if !errors.As(err, &tl) || !undeliverable(err) || tl.kind != "presence" {
		t.Fatalf("encodeBounded: %v", err)
	}
}

// FuzzShrinkStanza checks that a cut never splits a character and that
// the encoded stanza always fits the bound.
func FuzzShrinkStanza(f *testing.F) {
	f.Add(strings.Repeat("<", 50_000), "subject", "thread", "status", "reason", 5000)
	f.Add(strings.Repeat("é😀\n", 9000), strings.Repeat("\xff", 7000), "", "", strings.Repeat("&", 9000), 4096)
	f.Add("a\xe2\x82b", strings.Repeat("x", 70_000), strings.Repeat("t", 2000), strings.Repeat("\"", 30_000), "", 65536)
	f.Fuzz(func(t *testing.T, body, subject, thread, status, reason string, limit int) {
		limit = MinMaxStanzaBytes + abs(limit)%(64<<10)
		g := &Gateway{cfg: Config{MaxStanzaBytes: limit}, log: newTestLogger(io.Discard)}
		// Grow the fuzzer's texts so that they are over the bound.
		grow := func(s string) string {
			if s == "" {
				return s
			}
			return strings.Repeat(s, 1+limit/len(s))
		}
		body, subject, status, reason = grow(body), grow(subject), grow(status), grow(reason)
		stanzas := []any{
			messageOut{From: "f@gw.example.test", To: "u@example.test", Type: "chat", Body: body, Subject: subject, Thread: thread},
			subjectOut{From: "r@gw.example.test/n", To: "u@example.test/r", Type: "groupchat", Subject: subject},
			presenceOut{From: "r@gw.example.test/n", To: "u@example.test/r", Status: status,
				Payload: mucUser{Items: []mucItem{{Role: "none", Reason: reason}, {Reason: body}}}},
		}
		for _, v := range stanzas {
			var buf bytes.Buffer
			out, _, err := g.encodeBounded(&buf, v)
			if err != nil {
				t.Fatalf("%T refused: %v", v, err)
			}
			if buf.Len() > limit {
				t.Fatalf("%T encoded to %d bytes, over %d", v, buf.Len(), limit)
			}
			if err := xml.NewDecoder(bytes.NewReader(buf.Bytes())).Decode(new(struct{})); err != nil {
				t.Fatalf("%T encoded to bad XML: %v", v, err)
			}
			for _, pair := range textPairs(v, out) {
				checkCut(t, pair[0], pair[1])
			}
		}
	})
}

// textPairs returns each cuttable text of a stanza before and after.
func textPairs(before, after any) [][2]string {
	switch b := before.(type) {
	case messageOut:
		a := after.(messageOut)
		return [][2]string{{b.Body, a.Body}, {b.Subject, a.Subject}}
	case subjectOut:
		return [][2]string{{b.Subject, after.(subjectOut).Subject}}
	case presenceOut:
		a := after.(presenceOut)
		pairs := [][2]string{{b.Status, a.Status}}
		bi, ai := b.Payload.(mucUser).Items, a.Payload.(mucUser).Items
		for i := range bi {
			pairs = append(pairs, [2]string{bi[i].Reason, ai[i].Reason})
		}
		return pairs
	}
	return nil
}

// checkCut checks that after is before, or a prefix of it ending on a
// character boundary followed by the note, or empty.
func checkCut(t *testing.T, before, after string) {
	t.Helper()
	if after == before || after == "" {
		return
	}
	i := strings.LastIndex(after, "\n[cut: ")
	if i < 0 || !strings.HasSuffix(after, " more]") {
		t.Fatalf("cut text without a note: %q…", after[:min(len(after), 40)])
	}
	kept := after[:i]
	if !strings.HasPrefix(before, kept) {
		t.Fatalf("cut text is not a prefix of the original")
	}
	i = 0
	for i < len(kept) {
		_, w := utf8.DecodeRuneInString(before[i:])
		i += w
	}
	if i != len(kept) {
		t.Fatalf("cut splits a character at byte %d", len(kept))
	}
	if utf8.ValidString(before) && !utf8.ValidString(kept) {
		t.Fatalf("cut made valid UTF-8 invalid")
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// BenchmarkEncodeBounded measures the bound on the hot path (a chat
// message that fits) and on a 2 MB body that must be cut.
func BenchmarkEncodeBounded(b *testing.B) {
	g := &Gateway{cfg: Config{MaxStanzaBytes: DefaultMaxStanzaBytes}, log: newTestLogger(io.Discard)}
	for _, bc := range []struct {
		name string
		body string
	}{{"fits", "hello there, how are you today? <3"}, {"2MB", strings.Repeat("x<", 1<<20)}} {
		b.Run(bc.name, func(b *testing.B) {
			m := messageOut{From: "friend%test.example@gw.example.test", To: "alice@example.test", ID: "id1", Type: "chat", Body: bc.body}
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if _, _, err := g.encodeBounded(&buf, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
