package main

import (
	"strings"
	"time"

	"passerelle.dev/passerelle/internal/irctest"
	"passerelle.dev/passerelle/internal/tb"
	"passerelle.dev/passerelle/internal/xmpptest"
)

// pair is one XMPP user in a room through a gateway and one IRC user in
// the same channel: the two ends of the latency and throughput scenarios.
type pair struct {
	g        gateway
	room     string
	channel  string
	xmppNick string
	ircNick  string
	x        *xmpptest.Client
	irc      *irctest.Client
	// received gets each group-chat body the XMPP user receives from the
	// IRC user, with the time the client read it.
	received chan arrival
	// rejected gets the condition of each error stanza from the room (a
	// message refused).
	rejected chan string
}

type arrival struct {
	body string
	at   time.Time
}

// newPair joins both ends to the channel #bench-<gateway> and waits until
// each sees the other.
func newPair(t tb.TB, e *env, g gateway) *pair {
	t.Helper()
	short := g.Name()[:4]
	p := &pair{
		g:        g,
		channel:  "#bench-" + short,
		xmppNick: "pair-" + g.Name(), // Passerelle takes the registered nick: the local part
		ircNick:  "i" + short,
		received: make(chan arrival, 1<<16),
		rejected: make(chan string, 1<<16),
	}
	p.room = g.Room(p.channel)
	p.irc = e.ircUser(t, p.ircNick)
	p.irc.Join(t, p.channel)
	p.x = e.dial(t, "pair-"+g.Name())
	join(t, p.x, p.room, p.xmppNick)
	p.irc.Expect(t, 30*time.Second, irctest.From(p.xmppNick, irctest.Command("JOIN", p.channel)))
	from := strings.ToLower(p.room + "/" + p.ircNick)
	roomPrefix := strings.ToLower(p.room)
	p.x.Filter(func(s *xmpptest.Stanza) bool {
		if s.XMLName.Local != "message" {
			return false
		}
		f := strings.ToLower(s.From)
		switch {
		case s.Type == "error" && strings.HasPrefix(f, roomPrefix):
			p.rejected <- s.ErrorCondition()
		case s.Type == "groupchat" && f == from:
			// Bodies are plain ASCII here: cut the text out rather than
			// parse the payload again.
			if body, ok := bodyOf(s.Inner); ok {
				p.received <- arrival{body, time.Now()}
			}
		}
		return false
	})
	return p
}

// bodyOf finds the text of the <body> element in a stanza's payload.
func bodyOf(inner string) (string, bool) {
	i := strings.Index(inner, "<body")
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(inner[i:], '>')
	if j < 0 {
		return "", false
	}
	rest := inner[i+j+1:]
	k := strings.Index(rest, "</body>")
	if k < 0 {
		return "", false
	}
	return rest[:k], true
}

// sendXMPP sends a group-chat message from the XMPP user.
func (p *pair) sendXMPP(t tb.TB, id, body string) {
	p.x.SendRaw(t, `<message to='`+p.room+`' type='groupchat' id='`+id+`'><body>`+body+`</body></message>`)
}

// isFromXMPP reports whether an IRC message is the XMPP user's line to the
// channel.
func (p *pair) isFromXMPP(m irctest.Message) bool {
	return m.Command == "PRIVMSG" && strings.EqualFold(m.Nick, p.xmppNick) && len(m.Params) == 2 && strings.EqualFold(m.Params[0], p.channel)
}
