package irc

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWireIdleTimeoutRenewed: girc's read timeout means silence from the
// server; lines girc does not see renew it too.
func TestWireIdleTimeoutRenewed(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	var got atomic.Int64
	w := newWireConn(client, "irc.test", 1, new(atomic.Bool), func(any) bool { got.Add(1); return true })
	defer w.Close()
	go func() {
		for i := 0; i < 12; i++ {
			if _, err := server.Write([]byte(":bob!b@h PRIVMSG #c :busy\r\n")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, _ = server.Write([]byte("PING :still-here\r\n"))
	}()
	_ = w.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 512)
	n, err := w.Read(buf)
	if err != nil {
		t.Fatalf("read after %d lines girc does not see: %v", got.Load(), err)
	}
	if line := string(buf[:n]); !strings.HasPrefix(line, "PING") || got.Load() != 13 {
		t.Errorf("girc got %q after %d lines", line, got.Load())
	}
}
