package email

import (
	"errors"
	"net/textproto"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"passerelle.dev/passerelle/transports"
)

// sendLoop sends the queued mails one at a time until Close, then drains
// what is left.
func (s *Session) sendLoop() {
	defer s.wg.Done()
	for om := range s.out {
		s.sendSafely(om.m)
	}
}

// sendSafely sends one mail; a panic costs that mail only, which comes
// back to the user as failed.
func (s *Session) sendSafely(m transports.Message) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("email: panic while sending a mail", "to", m.To, "panic", r, "stack", string(debug.Stack()))
			s.fail(m, transports.Errorf(transports.Internal, "the mail could not be sent (internal error)"))
		}
	}()
	if hook := testHookSend.Load(); hook != nil {
		(*hook)(m)
	}
	s.sendOne(m)
}

// testHookSend, if set (by tests), runs before each mail is sent.
var testHookSend atomic.Pointer[func(transports.Message)]

// sendOne sends one mail, retrying temporary failures; a permanent failure,
// or the last temporary one, comes back to the user on that message.
func (s *Session) sendOne(m transports.Message) {
	th := s.thr.get(s.ctx, m.Thread)
	out, err := s.t.compose(s.acct.address, m.To, m.Subject, m.Body, m.Thread, th)
	if err != nil {
		s.fail(m, transports.Errorf(transports.Internal, "the mail could not be built"))
		return
	}
	// Record the thread before sending: the answer may come back before
	// this goroutine runs again.
	if m.Thread != "" {
		if err := s.thr.add(s.ctx, m.Thread, out.msgID, out.subject); err != nil {
			s.log.Warn("email: cannot record the thread", "err", err)
		}
	}
	for attempt := 1; ; attempt++ {
		err = s.smtpSend(out)
		if err == nil {
			break
		}
		if permanent(err) || attempt >= s.t.cfg.SendAttempts {
			s.log.Info("email: not sent", "to", m.To, "attempts", attempt, "err", err)
			s.fail(m, err)
			return
		}
		s.log.Info("email: retrying", "to", m.To, "attempt", attempt, "err", err)
		select {
		case <-time.After(s.t.cfg.RetryWait.Duration):
		case <-s.ctx.Done():
			s.fail(m, transports.Errorf(transports.Unreachable, "the mail was not sent before the session ended"))
			return
		}
	}
}

func (s *Session) fail(m transports.Message, err error) {
	s.deliver(transports.SendFailure{To: m.To, ID: m.ID, Err: err})
}

// smtpSend delivers one mail to the submission server.
func (s *Session) smtpSend(out outgoing) error {
	c, err := s.acct.dialSMTP(s.ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(s.acct.address, nil); err != nil {
		return smtpErr("the server refused the sender", err)
	}
	if err := c.Rcpt(out.to, nil); err != nil {
		return smtpErr("the server refused the recipient "+out.to, err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("the server refused the mail", err)
	}
	if _, err := w.Write(out.raw); err != nil {
		return smtpErr("sending the mail failed", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("the server refused the mail", err)
	}
	_ = c.Quit()
	return nil
}

// smtpErr gives an SMTP failure its meaning: 5xx is permanent (a bad
// recipient is not found), 4xx and network errors are worth a retry.
func smtpErr(what string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		kind := transports.Unreachable
		switch {
		case se.Code == 550 || se.Code == 551 || se.Code == 553 || se.EnhancedCode[1] == 1:
			kind = transports.NotFound
		case se.Code >= 500:
			kind = transports.Forbidden
		}
		return &transports.Error{Kind: kind, Text: what + ": " + se.Message, Err: err}
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return &transports.Error{Kind: transports.Unreachable, Text: what + ": " + te.Msg, Err: err}
	}
	return &transports.Error{Kind: transports.Unreachable, Text: what + ": " + shortErr(err), Err: err}
}

// permanent reports whether retrying cannot help.
func permanent(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code >= 500
	}
	switch transports.KindOf(err) {
	case transports.NotAuthorized, transports.BadRequest, transports.NotFound, transports.Forbidden:
		return true
	}
	return false
}
