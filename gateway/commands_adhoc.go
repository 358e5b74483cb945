package gateway

import (
	"encoding/xml"

	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// nsCommands is XEP-0050's namespace.
const nsCommands = "http://jabber.org/protocol/commands"

// adhocCommand is the <command/> payload, both ways.
type adhocCommand struct {
	XMLName   xml.Name      `xml:"http://jabber.org/protocol/commands command"`
	Node      string        `xml:"node,attr"`
	SessionID string        `xml:"sessionid,attr,omitempty"`
	Status    string        `xml:"status,attr,omitempty"`
	Action    string        `xml:"action,attr,omitempty"`
	Actions   *adhocActions `xml:"actions"`
	Notes     []adhocNote   `xml:"note"`
	Form      *form.Data    `xml:"jabber:x:data x"`
}

type adhocActions struct {
	Execute  string    `xml:"execute,attr,omitempty"`
	Prev     *struct{} `xml:"prev"`
	Next     *struct{} `xml:"next"`
	Complete *struct{} `xml:"complete"`
}

type adhocNote struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

// commandItems lists the commands offered to the user (disco#items on the
// commands node): admins see more.
func (u *user) commandItems() discoItems {
	q := discoItems{Node: nsCommands}
	for _, c := range u.commandsFor() {
		q.Items = append(q.Items, discoItem{JID: u.g.domain.String(), Node: c.node, Name: c.name})
	}
	return q
}

// serveCommandItems answers disco#items of the commands node: the commands
// this user may run.
func (u *user) serveCommandItems(ev stanzaEvent) {
	u.g.replyResult(ev.s, u.commandItems())
}

// commandInfo answers disco#info on a command's node.
func commandInfo(c *command) discoInfo {
	return discoInfo{
		Node:       c.node,
		Identities: []info.Identity{{Category: "automation", Type: "command-node", Name: c.name}},
		Features:   []info.Feature{{Var: nsCommands}, {Var: nsDataForms}},
	}
}

// handleAdhoc runs the XEP-0050 protocol over the command set: execute,
// next, prev, complete and cancel, with session ids.
func (u *user) handleAdhoc(ev stanzaEvent) {
	s := ev.s
	var q adhocCommand
	if _, err := s.decodeChild(xml.Name{Space: nsCommands, Local: "command"}, &q); err != nil {
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Unreadable command."))
		return
	}
	u.expireRuns()
	if q.SessionID == "" {
		c, ok := u.findCommand(q.Node)
		if !ok {
			u.refuseCommand(s, q.Node)
			return
		}
		r := u.startRun(c, s.FromRaw)
		if len(r.stage.fields) == 0 && r.stage.instructions == "" {
			// Nothing to show or ask: run it.
			u.submitStage(r, nil, func(o outcome) { u.adhocReply(s, r, o) })
			return
		}
		u.adhocReply(s, r, outcome{next: r.stage})
		return
	}
	r, ok := u.commands.runs[q.SessionID]
	if !ok || r.from != s.FromRaw || r.cmd.node != q.Node {
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "No such command session (it may have expired)."))
		return
	}
	if r.busy {
		u.g.replyError(s, stanzaErr(stanza.Wait, stanza.UnexpectedRequest, "The previous step is still being handled."))
		return
	}
	switch q.Action {
	case "cancel":
		delete(u.commands.runs, r.id)
		u.g.replyResult(s, adhocCommand{Node: r.cmd.node, SessionID: r.id, Status: "canceled"})
	case "prev":
		if len(r.prev) == 0 {
			u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "This is the first step."))
			return
		}
		r.stage = r.prev[len(r.prev)-1]
		r.prev = r.prev[:len(r.prev)-1]
		u.adhocReply(s, r, outcome{next: r.stage})
	case "", "execute", "next", "complete":
		values := transports.Values{}
		if q.Form != nil {
			for _, f := range r.stage.fields {
				if v, ok := q.Form.Raw(f.Name); ok && len(v) > 0 {
					values[f.Name] = v[0]
				}
			}
		}
		u.submitStage(r, values, func(o outcome) { u.adhocReply(s, r, o) })
	default:
		u.g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Unknown action "+q.Action+"."))
	}
}

// refuseCommand answers a command the user may not run: admins-only ones
// are forbidden, others unknown.
func (u *user) refuseCommand(s *inbound, node string) {
	for _, c := range u.g.cmds {
		if c.node == node && c.admin && !u.isAdmin() {
			u.g.replyError(s, stanzaErr(stanza.Auth, stanza.Forbidden, "Only the gateway's administrators may run this command."))
			return
		}
		if c.node == node {
			u.g.replyError(s, stanzaErr(stanza.Cancel, stanza.NotAllowed, "This command does not apply to you now."))
			return
		}
	}
	u.g.replyError(s, stanzaErr(stanza.Cancel, stanza.ItemNotFound, "No such command."))
}

// adhocReply renders an outcome: the next stage as a form, or the end.
func (u *user) adhocReply(s *inbound, r *cmdRun, o outcome) {
	out := adhocCommand{Node: r.cmd.node, SessionID: r.id, Status: "completed"}
	if o.note != "" {
		out.Notes = []adhocNote{{Type: o.noteType, Text: o.note}}
	}
	if o.next != nil {
		out.Status = "executing"
		out.Form = stageForm(o.next)
		out.Actions = &adhocActions{Execute: "complete", Complete: &struct{}{}}
		if len(r.prev) > 0 {
			out.Actions.Prev = &struct{}{}
		}
	}
	u.g.replyResult(s, out)
}

// stageForm renders a stage as a data form.
func stageForm(st *stage) *form.Data {
	fields := []form.Field{}
	if st.title != "" {
		fields = append(fields, form.Title(st.title))
	}
	if st.instructions != "" {
		fields = append(fields, form.Instructions(st.instructions))
	}
	for _, f := range st.fields {
		fields = append(fields, formField(f, st.values[f.Name]))
	}
	return form.New(fields...)
}

// formField renders one field; secrets are never sent back.
func formField(f transports.Field, value string) form.Field {
	opts := []form.Option{form.Label(f.Label)}
	if f.Desc != "" {
		opts = append(opts, form.Desc(f.Desc))
	}
	if f.Required {
		opts = append(opts, form.Required)
	}
	if value == "" {
		value = f.Default
	}
	if value != "" && f.Kind != transports.Secret {
		opts = append(opts, form.Value(value))
	}
	switch f.Kind {
	case transports.Secret:
		return form.TextPrivate(f.Name, opts...)
	case transports.Bool:
		return form.Boolean(f.Name, opts...)
	case transports.List:
		for _, o := range f.Options {
			opts = append(opts, form.ListItem(o.Label, o.Value))
		}
		return form.List(f.Name, opts...)
	}
	return form.Text(f.Name, opts...)
}
