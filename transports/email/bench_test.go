package email_test

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkMailToXMPP measures the delivery latency of one new mail, from
// its delivery into the mailbox (Dovecot LMTP) to its arrival at a real
// XMPP client through IMAP IDLE and the gateway. Dovecot announces new mail
// to IDLE clients 0.5 s after delivery, always; that delay dominates.
func BenchmarkMailToXMPP(b *testing.B) {
	e := newEnv(b)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	alice, carol := "alice@"+e.mail.Domain(), "carol@elsewhere.example"
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := fmt.Sprintf("bench %d", i)
		start := time.Now()
		e.mail.Deliver(b, alice, rawMail(carol, alice, "bench", body))
		for {
			m := c.Expect(b, wait, chatFrom(carol))
			if m.Text("", "body") == body {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	report(b, lat)
}

// BenchmarkXMPPToMail measures a chat message's way to the recipient's
// mailbox: gateway, SMTP submission to Postfix, LMTP into Dovecot, seen by
// an IMAP client polling every 10 ms.
func BenchmarkXMPPToMail(b *testing.B) {
	e := newEnv(b)
	c := e.client("alice")
	e.register(c, "alice", "alice-mail")
	bob := "bob@" + e.mail.Domain()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c.SendRaw(b, fmt.Sprintf(`<message to='%s' type='chat' id='b%d'><body>bench %d</body></message>`, contactJID(bob), i, i))
		for len(e.mail.Messages(b, "bob", "bob-mail")) < i+1 {
			if time.Since(start) > wait {
				b.Fatalf("mail %d did not arrive", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	report(b, lat)
}

// report adds the median and the worst latency to the benchmark's output.
func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
}
