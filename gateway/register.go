package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/form"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// maxFieldLen bounds every submitted registration value.
const maxFieldLen = 1024

// registerQuery is the jabber:iq:register payload (XEP-0077) as the gateway
// sends it: instructions and a data form (XEP-0004).
type registerQuery struct {
	XMLName      xml.Name  `xml:"jabber:iq:register query"`
	Instructions string    `xml:"instructions,omitempty"`
	Registered   *struct{} `xml:"registered"`
	// Legacy are the XEP-0077 fields of the form's fields that have one,
	// for clients without data forms.
	Legacy []legacyField
	Form   *form.Data
}

// legacyField is a plain XEP-0077 field such as <username/>.
type legacyField struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// xep0077Fields are the field names XEP-0077 defines as elements.
var xep0077Fields = map[string]bool{
	"username": true, "nick": true, "password": true, "name": true, "first": true,
	"last": true, "email": true, "address": true, "city": true, "state": true,
	"zip": true, "phone": true, "url": true, "date": true, "misc": true, "text": true, "key": true,
}

// registerSubmit is a submitted jabber:iq:register payload: a removal, a data
// form, or the XEP-0077 legacy elements named like the form fields.
type registerSubmit struct {
	Remove *struct{}  `xml:"remove"`
	Form   *form.Data `xml:"jabber:x:data x"`
	Legacy []struct {
		XMLName xml.Name
		Value   string `xml:",chardata"`
	} `xml:",any"`
}

func (u *user) handleRegister(ev stanzaEvent) {
	s := ev.s
	if s.Type == "get" {
		u.g.replyResult(s, u.registrationForm())
		return
	}
	var q registerSubmit
	if _, err := s.decodeChild(xml.Name{Space: nsRegister, Local: "query"}, &q); err != nil {
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Unreadable registration: "+err.Error()))
		return
	}
	reply := func(e *stanza.Error) {
		if e != nil {
			u.g.replyError(s, *e)
		} else {
			u.g.replyResult(s, nil)
		}
	}
	if q.Remove != nil {
		reply(u.unregister())
		return
	}
	raw := make(map[string]string)
	if q.Form != nil {
		for _, f := range u.g.info.Fields {
			if v, ok := q.Form.Raw(f.Name); ok && len(v) > 0 {
				raw[f.Name] = v[0]
			}
		}
	} else {
		for _, l := range q.Legacy {
			raw[l.XMLName.Local] = l.Value
		}
	}
	u.register(raw, reply)
}

// register checks submitted values and has the transport prove them;
// reply gets the outcome, from the user's loop, once it is known. Every
// front end (XEP-0077, ad-hoc and chat commands) registers through here.
func (u *user) register(raw map[string]string, reply func(*stanza.Error)) {
	if u.commands.regInFlight {
		e := stanzaErr(stanza.Wait, stanza.UnexpectedRequest, "A registration is already in progress.")
		reply(&e)
		return
	}
	values, err := u.submittedValues(raw)
	if err != nil {
		e := stanzaErr(stanza.Modify, stanza.NotAcceptable, err.Error())
		reply(&e)
		return
	}
	if e := u.registrationAllowed(); e != nil {
		reply(e)
		return
	}
	ok, release := u.reserveRegistration()
	if !ok {
		e := stanzaErr(stanza.Wait, stanza.ResourceConstraint, u.g.cfg.Name+" has as many users as its administrator allows.")
		reply(&e)
		return
	}
	u.commands.regRelease = release
	var previous transports.Values
	if u.reg != nil {
		previous = registrationValues(u.reg)
	}
	req := transports.RegisterRequest{User: u.jid.String(), Values: values, Previous: previous}
	u.inFlight++
	u.commands.regInFlight = true
	goSafe(u.log, "legacy registration", func() {
		ctx, cancel := context.WithTimeout(u.ctx, loginTimeout)
		defer cancel()
		stored, err := u.g.cfg.Transport.Register(ctx, req)
		u.post(registerDone{reply: reply, values: stored, err: err})
	}, func(err error) {
		u.post(registerDone{reply: reply, err: err})
	})
}

// registrationForm is the form a user fills in, with their current values
// when they are registered. Secrets are never sent back.
func (u *user) registrationForm() registerQuery {
	info := u.g.info
	fields := []form.Field{
		form.Hidden("FORM_TYPE", form.Value(nsRegister)),
		form.Title("Register with " + u.g.cfg.Name),
		form.Instructions(info.Instructions),
	}
	q := registerQuery{Instructions: info.Instructions}
	if u.reg != nil {
		q.Registered = &struct{}{}
	}
	for _, f := range info.Fields {
		value := f.Default
		if u.reg != nil {
			if v, ok := u.reg.Fields[f.Name]; ok {
				value = v
			}
			if f.Kind == transports.Secret {
				// Already stored: may be left empty.
				f.Required, f.Desc = false, u.keepSecretDesc(f)
			}
		}
		if f.Kind == transports.Secret {
			value = ""
		}
		if xep0077Fields[f.Name] {
			q.Legacy = append(q.Legacy, legacyField{XMLName: xml.Name{Space: nsRegister, Local: f.Name}, Value: value})
		}
		fields = append(fields, formField(f, value))
	}
	q.Form = form.New(fields...)
	return q
}

// submittedValues checks submitted values against the transport's fields.
func (u *user) submittedValues(raw map[string]string) (transports.Values, error) {
	values := make(transports.Values)
	var problems []string
	var kept []transports.Field // secrets left empty, taken from the registration
	for _, f := range u.g.info.Fields {
		v := raw[f.Name]
		if f.Kind != transports.Secret {
			v = strings.TrimSpace(v)
		}
		if v == "" && f.Kind == transports.Secret && u.reg != nil {
			if v = u.reg.Secrets[f.Name]; v != "" {
				kept = append(kept, f)
			}
		}
		if v == "" {
			v = f.Default
		}
		if err := checkValue(f, &v); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if v != "" {
			values[f.Name] = v
		}
	}
	for _, f := range kept {
		if changed := u.changedFields(f.BoundTo, values); len(changed) > 0 {
			problems = append(problems, fmt.Sprintf("you changed %s: enter the %s again, it is kept only for what it was given for",
				strings.Join(changed, ", "), strings.ToLower(labelOf(f))))
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return values, nil
}

// changedFields returns the labels of the named fields whose submitted
// value differs from the registration's.
func (u *user) changedFields(names []string, values transports.Values) []string {
	var changed []string
	for _, name := range names {
		if !strings.EqualFold(values[name], u.reg.Fields[name]) {
			f, _ := u.g.info.Field(name)
			f.Name = name
			changed = append(changed, labelOf(f))
		}
	}
	return changed
}

// keepSecretDesc tells a registered user that an empty secret keeps the
// stored one, and when it does not.
func (u *user) keepSecretDesc(f transports.Field) string {
	if len(f.BoundTo) == 0 {
		return "Leave empty to keep the current one."
	}
	var labels []string
	for _, name := range f.BoundTo {
		b, _ := u.g.info.Field(name)
		b.Name = name
		labels = append(labels, labelOf(b))
	}
	return "Leave empty to keep the current one, unless you change " + strings.Join(labels, ", ") + "."
}

func labelOf(f transports.Field) string {
	if f.Label != "" {
		return f.Label
	}
	return f.Name
}

// checkValue validates one field's value, normalising booleans.
func checkValue(f transports.Field, v *string) error {
	label := labelOf(f)
	switch {
	case *v == "" && f.Required:
		return fmt.Errorf("%s is required", label)
	case len(*v) > maxFieldLen:
		return fmt.Errorf("%s is longer than %d bytes", label, maxFieldLen)
	case strings.ContainsAny(*v, "\x00\r\n"):
		return fmt.Errorf("%s must be a single line", label)
	}
	switch f.Kind {
	case transports.Bool:
		switch *v {
		case "1", "true":
			*v = "true"
		case "0", "false", "":
			*v = "false"
		default:
			return fmt.Errorf("%s must be true or false", label)
		}
	case transports.List:
		if *v == "" {
			return nil
		}
		for _, o := range f.Options {
			if o.Value == *v {
				return nil
			}
		}
		return fmt.Errorf("%s: %q is not one of the choices", label, *v)
	}
	return nil
}

func registrationValues(r *registry.Registration) transports.Values {
	v := make(transports.Values, len(r.Fields)+len(r.Secrets))
	for k, x := range r.Fields {
		v[k] = x
	}
	for k, x := range r.Secrets {
		v[k] = x
	}
	return v
}

// registerFinished stores a registration the transport accepted, answers
// the iq, and asks for a presence subscription (XEP-0100 §4.1).
func (u *user) registerFinished(ev registerDone) {
	u.commands.regInFlight = false
	// The registration is stored or refused below, before the loop handles
	// anything else: either way it no longer needs a reserved place.
	defer u.commands.regRelease()
	if ev.err != nil {
		u.log.Info("registration refused", "err", ev.err)
		e := transportError(ev.err)
		ev.reply(&e)
		return
	}
	r := registry.Registration{
		User:      u.jid.String(),
		Transport: u.g.domain.String(),
		Fields:    make(map[string]string),
		Secrets:   make(map[string]string),
	}
	for k, v := range ev.values {
		if f, ok := u.g.info.Field(k); ok && f.Kind == transports.Secret {
			r.Secrets[k] = v
		} else {
			r.Fields[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	if err := u.g.cfg.Store.PutRegistration(ctx, r); err != nil {
		u.log.Error("cannot store a registration", "err", err)
		e := stanzaErr(stanza.Wait, stanza.InternalServerError, "The registration could not be stored.")
		ev.reply(&e)
		return
	}
	isNew := u.reg == nil
	u.reg = &r
	if r.Fields[transports.FieldKeepRooms] != "true" {
		// Rooms kept while the user was away are left now.
		for _, rm := range u.sortedRooms() {
			if len(rm.resources) == 0 {
				u.partRoom(rm, "")
			}
		}
	}
	u.log.Info("registered", "new", isNew)
	ev.reply(nil)
	if isNew {
		// XEP-0100 §4.1.1: ask to see the user's presence. (A probe now would
		// be answered "unsubscribed" and cancel the pending request.)
		_ = u.send(presenceOut{From: u.g.domain.String(), To: u.jid.String(), Type: "subscribe"})
	}
	if u.wantSession() {
		u.reconnect("Reconnecting with the new settings.")
	}
}

// unregister deletes all of the user's data for this transport, logs them
// out and removes the transport and its contacts from their roster.
func (u *user) unregister() *stanza.Error {
	if u.reg == nil {
		e := stanzaErr(stanza.Cancel, stanza.ItemNotFound, "You are not registered.")
		return &e
	}
	ctx, cancel := context.WithTimeout(u.ctx, writeTimeout)
	defer cancel()
	contacts, err := u.g.cfg.Store.Contacts(ctx, u.jid.String(), u.g.domain.String())
	if err != nil {
		u.log.Warn("cannot list contacts to unsubscribe", "err", err)
	}
	if err := u.g.cfg.Store.DeleteRegistration(ctx, u.jid.String(), u.g.domain.String()); err != nil && !errors.Is(err, registry.ErrNotFound) {
		u.log.Error("cannot delete a registration", "err", err)
		e := stanzaErr(stanza.Wait, stanza.InternalServerError, "The registration could not be removed.")
		return &e
	}
	u.rooms.saved = nil // deleted with the registration
	u.dropRooms("You unregistered from " + u.g.domain.String() + ".")
	u.logout("Unregistered.")
	u.reg = nil
	clear(u.resources.online)
	u.log.Info("unregistered")
	for _, c := range contacts {
		if from, err := u.g.contactJID(c.Address); err == nil {
			_ = u.send(presenceOut{From: from, To: u.jid.String(), Type: "unsubscribe"})
			_ = u.send(presenceOut{From: from, To: u.jid.String(), Type: "unsubscribed"})
		}
	}
	_ = u.send(presenceOut{From: u.g.domain.String(), To: u.jid.String(), Type: "unsubscribe"})
	_ = u.send(presenceOut{From: u.g.domain.String(), To: u.jid.String(), Type: "unsubscribed"})
	return nil
}
