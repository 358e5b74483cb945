package email_test

import (
	"strings"
	"testing"
	"time"

	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/internal/hostileimap"
	"passerelle.dev/passerelle/internal/testserver"
	"passerelle.dev/passerelle/internal/xmpptest"
	"passerelle.dev/passerelle/transports/email"
)

// Backoff of the hostile-server tests: short, so that a tight loop would
// show within the observed period.
const (
	hostileMin    = 100 * time.Millisecond
	hostileMax    = 800 * time.Millisecond
	hostilePeriod = 4 * time.Second
)

// maxAttempts is the most connections a watcher that backs off as
// configured can make in period after a failure: each wait is at least
// half of the doubling step (transports/backoff), and failed connections
// never reset it. One more for the connection under way.
func maxAttempts(period, lo, hi time.Duration) int {
	n, total, d := 1, time.Duration(0), lo
	for {
		total += d / 2
		if total > period {
			return n + 1
		}
		n++
		d = min(2*d, hi)
	}
}

// TestHostileIMAPServer: a user's own IMAP server (allowed here: custom
// servers, loopback, plaintext) answers every FETCH with poison: 5 MB of
// "(" in a BODYSTRUCTURE (which made go-imap overflow the stack and kill
// the process), a literal announced as 10 GB, a 100 MB line without end.
// The gateway survives, stops reading at once, tells the user the mailbox
// connection failed and why, and keeps retrying with backoff, not in a
// tight loop.
func TestHostileIMAPServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		poison hostileimap.Poison
		want   string
	}{
		{"deep BODYSTRUCTURE", hostileimap.DeepBodyStructure(5 << 20), "nested more than"},
		{"10 GB literal", hostileimap.HugeLiteral(10<<30, 128<<20), "a literal of more than"},
		{"100 MB line", hostileimap.EndlessLine(100 << 20), "a response longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := hostileimap.Start(t, tc.poison)
			e := newEnv(t, allowLoopback, func(c *email.Config, _ *testserver.Mail) {
				c.ReconnectMin = config.Duration{Duration: hostileMin}
				c.ReconnectMax = config.Duration{Duration: hostileMax}
				c.PollInterval = config.Duration{Duration: 200 * time.Millisecond}
			})
			c := e.client("alice")
			c.SendRaw(t, `<presence/>`)
			v := servers("alice@"+e.mail.Domain(), "alice-mail", "127.0.0.1", itoa(srv.Port()))
			v["smtp_port"] = itoa(port(e.mail.SMTPAddr()))
			if res := submitRegistration(t, c, v); res.Type != "result" {
				t.Fatalf("registration: %s", res)
			}
			c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribe"))
			c.SendRaw(t, `<presence to='`+gwDomain+`' type='subscribed'/>`)
			c.SendRaw(t, `<presence to='`+gwDomain+`' type='subscribe'/>`)
			c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, "subscribed"))
			c.Expect(t, wait, xmpptest.PresenceFrom(gwDomain, ""))

			// Mail arrives, more than the watcher will get through: every
			// fetch is poisoned.
			srv.SetMessages(1000)
			p := c.Expect(t, wait, func(s *xmpptest.Stanza) bool {
				return s.XMLName.Local == "presence" && s.From == gwDomain && strings.Contains(s.Text("", "status"), "Mailbox connection lost")
			})
			status := p.Text("", "status")
			if !strings.Contains(status, "safety limit") || !strings.Contains(status, tc.want) {
				t.Errorf("the user was told %q", status)
			}
			start, fetches := srv.Accepted(), srv.Fetches()
			time.Sleep(hostilePeriod)
			attempts, poisoned := srv.Accepted()-start, srv.Fetches()-fetches
			if limit := maxAttempts(hostilePeriod, hostileMin, hostileMax); attempts > limit {
				t.Errorf("%d connections in %v: more than the %d the backoff allows", attempts, hostilePeriod, limit)
			}
			if poisoned < 2 {
				t.Errorf("%d poisoned fetches in %v: the watcher stopped retrying", poisoned, hostilePeriod)
			}
			// The client hung up at once: what reached it is the socket
			// buffers' worth, not the poison.
			if w, f := srv.Written(), srv.Fetches(); w > int64(f)*(8<<20) {
				t.Errorf("%d bytes of poison written over %d fetches: the client kept reading", w, f)
			}
			if !strings.Contains(e.logs.String(), "safety limit") {
				t.Errorf("the gateway did not log the broken bound")
			}
			t.Logf("%d connections, %d poisoned fetches in %v; %d bytes of poison written", attempts, poisoned, hostilePeriod, srv.Written())
		})
	}
}
