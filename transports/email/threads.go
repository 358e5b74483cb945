package email

import (
	"context"
	"encoding/json"
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

// add records that msgID (with subject) belongs to thread.
func (t *threads) add(ctx context.Context, thread, msgID, subject string) error {
	if thread == "" || msgID == "" || t.state == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	th := t.get(ctx, thread)
	if th.Last != "" {
		th.Refs = append(th.Refs, th.Last)
		if len(th.Refs) > maxReferences {
			th.Refs = append(th.Refs[:1], th.Refs[len(th.Refs)-maxReferences+1:]...)
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
	return t.state.Put(ctx, "msg/"+msgID, []byte(thread))
}
