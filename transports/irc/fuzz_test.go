package irc

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/lrstanley/girc"

	"passerelle.dev/passerelle/transports"
)

type discardSink struct{ n int }

func (d *discardSink) Deliver(context.Context, transports.Event) error { d.n++; return nil }

// FuzzHandleLine feeds arbitrary server lines to a registered connection
// with a joined channel: nothing may panic, whatever the server sends.
func FuzzHandleLine(f *testing.F) {
	for _, l := range []string{
		":irc.test 005 me CHANTYPES=#& PREFIX=(qaohv)~&@%+ CHANMODES=beI,k,l,imnt MONITOR=100 :are supported",
		":bob!b@h JOIN #c",
		":irc.test 353 me = #c :@bob +carol ~dave me",
		":irc.test 366 me #c :End",
		":bob!b@h MODE #c +ov-v+b carol carol dave x!*@*",
		":bob!b@h MODE #c +klm key 10",
		":bob!b@h KICK #c carol :bye",
		":bob!b@h PRIVMSG #c :\x01ACTION waves\x01",
		":bob!b@h PRIVMSG me :hi",
		":irc.test NOTICE me :server notice",
		":bob!b@h NICK robert",
		":bob!b@h QUIT :gone",
		":irc.test 303 me :bob carol",
		":irc.test 730 me :bob!b@h,carol",
		":irc.test 433 * me :in use",
		":irc.test 474 me #x :banned",
		":irc.test 482 me #c :not op",
		":irc.test 401 me nobody :no such nick",
		":bob!b@h TOPIC #c :new topic",
		":me!m@h PART #c :bye",
		"ERROR :closing",
		":x MODE",
		":",
	} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		tr, err := New(Config{AnyNetwork: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		sink := &discardSink{}
		s := newSession(tr, transports.LoginRequest{Values: transports.Values{fieldNick: "me"}, Events: sink}, nil, tr.log)
		defer s.cancel()
		n := s.net("irc.test")
		n.state, n.nick = stateRegistered, "me"
		n.channels["#c"] = &channel{name: "#c", joined: true, members: map[string]*member{"me": {nick: "me"}, "bob": {nick: "bob", prefixes: "@"}}}
		n.requests["1"] = &request{id: "1", kind: reqKick, channel: "#c", target: "carol"}
		e := girc.ParseEvent(line)
		if e == nil {
			return
		}
		n.handle(*e)
	})
}
