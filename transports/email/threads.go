package email

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"passerelle.dev/passerelle/transports"
)

// threadInfo is what is kept of one conversation, by XMPP thread id: the
// Message-IDs that a reply must reference, and the subject.
type threadInfo struct {
	Refs    []string `json:"refs,omitempty"` // the root and recent ids, oldest first
	Last    string   `json:"last,omitempty"`
	Subject string   `json:"subject,omitempty"`
}

// threads maps XMPP threads to mail threads and back, in the registration's
// state: "thread/<xmpp thread>" holds a threadInfo, "msg/<Message-ID>" the
// XMPP thread of a mail.
type threads struct {
	mu    sync.Mutex // the sender and the watcher both update threads
	state transports.State
}

func (t *threads) get(ctx context.Context, thread string) threadInfo {
	var th threadInfo
	if thread == "" || t.state == nil {
		return th
	}
	raw, err := t.state.Get(ctx, "thread/"+thread)
	if err == nil && raw != nil {
		_ = json.Unmarshal(raw, &th)
	}
	return th
}

// threadOf finds the XMPP thread of a mail from the ids it refers to; a
// mail that starts a conversation gets its root id as thread.
func (t *threads) threadOf(ctx context.Context, msgID string, refs []string) string {
	if t.state != nil {
		for i := len(refs) - 1; i >= 0; i-- {
			if raw, err := t.state.Get(ctx, "msg/"+refs[i]); err == nil && raw != nil {
				return string(raw)
			}
		}
	}
	if len(refs) > 0 {
		return refs[0]
	}
	return msgID
}

// maxThreads bounds the conversations kept per user; the oldest are
// forgotten (a reply to one of them starts a new XMPP thread).
const maxThreads = 500

// add records that msgID (with subject) belongs to thread, the newest
// conversation.
func (t *threads) add(ctx context.Context, thread, msgID, subject string) error {
	if thread == "" || msgID == "" || t.state == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	th := t.get(ctx, thread)
	var dropped []string
	if th.Last != "" {
		th.Refs = append(th.Refs, th.Last)
		if len(th.Refs) > maxReferences {
			cut := len(th.Refs) - maxReferences + 1
			dropped = append(dropped, th.Refs[1:cut]...)
			th.Refs = append(th.Refs[:1], th.Refs[cut:]...)
		}
	}
	th.Last = msgID
	if s := stripReply(strings.TrimSpace(subject)); s != "" && th.Subject == "" {
		th.Subject = s
	}
	raw, _ := json.Marshal(th)
	if err := t.state.Put(ctx, "thread/"+thread, raw); err != nil {
		return err
	}
	if err := t.state.Put(ctx, "msg/"+msgID, []byte(thread)); err != nil {
		return err
	}
	for _, id := range dropped {
		_ = t.state.Delete(ctx, "msg/"+id)
	}
	return t.touch(ctx, thread)
}

// touch makes thread the newest in the index and forgets the oldest
// threads beyond maxThreads.
func (t *threads) touch(ctx context.Context, thread string) error {
	var order []string
	if raw, err := t.state.Get(ctx, "threads"); err == nil && raw != nil {
		_ = json.Unmarshal(raw, &order)
	}
	order = slices.DeleteFunc(order, func(x string) bool { return x == thread })
	order = append(order, thread)
	for len(order) > maxThreads {
		old := t.get(ctx, order[0])
		for _, id := range append(old.Refs, old.Last) {
			_ = t.state.Delete(ctx, "msg/"+id)
		}
		_ = t.state.Delete(ctx, "thread/"+order[0])
		order = order[1:]
	}
	raw, _ := json.Marshal(order)
	return t.state.Put(ctx, "threads", raw)
}
