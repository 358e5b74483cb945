package email

import (
	"testing"

	"passerelle.dev/passerelle/transports"
)

// SetMailHook runs f on every incoming mail after it is parsed, until the
// test ends.
func SetMailHook(t testing.TB, f func(subject string)) {
	testHookMail.Store(&f)
	t.Cleanup(func() { testHookMail.Store(nil) })
}

// SetSendHook runs f before every outgoing mail is sent, until the test
// ends.
func SetSendHook(t testing.TB, f func(body string)) {
	g := func(m transports.Message) { f(m.Body) }
	testHookSend.Store(&g)
	t.Cleanup(func() { testHookSend.Store(nil) })
}
