package email

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-message/mail"
)

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":       "alice@example.com",
		"Alice.B+tag@Example.COM": "alice.b+tag@example.com",
		"100%@shop.example":       "100%@shop.example",
	} {
		if got, err := parseAddress(in); err != nil || got != want {
			t.Errorf("parseAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "alice", "a@b@c.com", "Alice <a@b.com>", "a b@c.com", "a@b.com\r\nBcc: x@y.com", "@example.com", "a@nodot"} {
		if got, err := parseAddress(in); err == nil {
			t.Errorf("parseAddress(%q) = %q, want an error", in, got)
		}
	}
}

func testTransport(t *testing.T) *Transport {
	t.Helper()
	tr, err := New(Config{DefaultSubject: "From XMPP"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestComposeHeaders(t *testing.T) {
	tr := testTransport(t)
	out, err := tr.compose("me@example.org", "you@example.com", "hi\r\nBcc: evil@example.net", "line 1\nligne 2 é", "", threadInfo{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.CreateReader(bytes.NewReader(out.raw))
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("Bcc") != "" {
		t.Fatal("a subject added a Bcc header")
	}
	if s, _ := r.Header.Subject(); s != "hi Bcc: evil@example.net" {
		t.Errorf("subject = %q", s)
	}
	if id, _ := r.Header.MessageID(); id != out.msgID || !strings.HasSuffix(id, "@example.org") {
		t.Errorf("Message-ID = %q (want %q)", id, out.msgID)
	}
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(p.Body)
	if got := strings.ReplaceAll(body.String(), "\r\n", "\n"); got != "line 1\nligne 2 é" {
		t.Errorf("body = %q", got)
	}

	// Without a subject, the default; in a known thread, a reply.
	out, _ = tr.compose("me@example.org", "you@example.com", "", "x", "", threadInfo{})
	r, _ = mail.CreateReader(bytes.NewReader(out.raw))
	if s, _ := r.Header.Subject(); s != "From XMPP" {
		t.Errorf("default subject = %q", s)
	}
	out, _ = tr.compose("me@example.org", "you@example.com", "", "x", "th", threadInfo{Refs: []string{"root@x"}, Last: "last@x", Subject: "Plans"})
	r, _ = mail.CreateReader(bytes.NewReader(out.raw))
	if s, _ := r.Header.Subject(); s != "Re: Plans" {
		t.Errorf("reply subject = %q", s)
	}
	irt, _ := r.Header.MsgIDList("In-Reply-To")
	refs, _ := r.Header.MsgIDList("References")
	if len(irt) != 1 || irt[0] != "last@x" || strings.Join(refs, " ") != "root@x last@x" {
		t.Errorf("In-Reply-To %v, References %v", irt, refs)
	}
}

// memState is a transports.State in memory.
type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memState) Get(_ context.Context, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}

func (s *memState) Put(_ context.Context, k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[k] = v
	return nil
}

func (s *memState) Delete(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func TestThreads(t *testing.T) {
	ctx := context.Background()
	th := threads{state: &memState{}}
	// We start a thread from XMPP; the contact's reply comes back in it.
	if err := th.add(ctx, "xmpp-1", "a@me", "Plans"); err != nil {
		t.Fatal(err)
	}
	if got := th.threadOf(ctx, "b@you", []string{"a@me"}); got != "xmpp-1" {
		t.Errorf("reply thread = %q", got)
	}
	_ = th.add(ctx, "xmpp-1", "b@you", "Re: Plans")
	info := th.get(ctx, "xmpp-1")
	if info.Last != "b@you" || strings.Join(info.Refs, " ") != "a@me" || info.Subject != "Plans" {
		t.Errorf("thread info %+v", info)
	}
	// A new conversation from mail is named by its first id.
	if got := th.threadOf(ctx, "new@you", nil); got != "new@you" {
		t.Errorf("new thread = %q", got)
	}
	if got := th.threadOf(ctx, "c@you", []string{"root@x", "unknown@y"}); got != "root@x" {
		t.Errorf("unknown references = %q", got)
	}
}

// TestThreadsBounded: old conversations and references are forgotten, so
// the state does not grow without end.
func TestThreadsBounded(t *testing.T) {
	ctx := context.Background()
	st := &memState{}
	th := threads{state: st}
	for i := 0; i < maxThreads+20; i++ {
		for j := 0; j < maxReferences+5; j++ {
			if err := th.add(ctx, fmt.Sprintf("t%d", i), fmt.Sprintf("m%d.%d@x", i, j), "s"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := th.threadOf(ctx, "new@x", []string{"m0.3@x"}); got == "t0" {
		t.Error("the oldest thread is still known")
	}
	last := fmt.Sprintf("t%d", maxThreads+19)
	if got := th.threadOf(ctx, "new@x", []string{fmt.Sprintf("m%d.0@x", maxThreads+19)}); got != last {
		t.Errorf("a recent thread's root is forgotten: %q", got)
	}
	want := maxThreads*(1+maxReferences) + maxThreads + 1 // msg keys, thread keys, the index
	if n := len(st.m); n > want {
		t.Errorf("%d keys kept, want at most %d", n, want)
	}
}
