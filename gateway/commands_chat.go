package gateway

import (
	"strings"

	"passerelle.dev/passerelle/transports"
)

// Chat commands: the user writes to the transport's JID; each command asks
// for its fields one message at a time. State is kept per resource.

// secretWarning is said once per run before the first secret is asked.
const secretWarning = "Careful: what you send next travels like any chat message and may be kept in your chat history or on the server. Use the ad-hoc command or the registration form if you prefer. Send \"cancel\" to stop."

// handleChatCommand handles a chat message to the transport itself.
func (u *user) handleChatCommand(ev stanzaEvent) {
	s := ev.s
	text := strings.TrimSpace(s.message().Body)
	if text == "" {
		return // chat states and the like
	}
	from := s.FromRaw
	u.expireRuns()
	r := u.chatRun(from)
	word := strings.ToLower(text)
	switch {
	case r != nil && word == "cancel":
		delete(u.commands.runs, r.id)
		u.say(from, "Canceled; nothing was changed.")
		return
	case r != nil && r.busy:
		u.say(from, "One moment: the previous answer is still being handled.")
		return
	case r != nil:
		u.chatAnswer(r, text)
		return
	}
	c, ok := u.findCommand(word)
	if !ok {
		if c, known := u.anyCommand(word); known && c.admin {
			u.say(from, "Only the gateway's administrators may run \""+word+"\".")
		} else if known {
			u.say(from, "You cannot run \""+word+"\" now. Send \"help\" for what you can do.")
		} else {
			u.say(from, "Unknown command \""+text+"\". Send \"help\" for the list.")
		}
		return
	}
	r = u.startRun(c, from)
	r.field = 0
	if c.word == "settings" {
		u.say(from, u.statusText()+"\nFor each setting, send a new value or \".\" to keep it.")
	}
	u.chatAsk(r)
}

// anyCommand finds a command by chat word, whether or not the user may
// run it now.
func (u *user) anyCommand(word string) (*command, bool) {
	for _, c := range u.g.cmds {
		if c.word == word {
			return c, true
		}
	}
	return nil, false
}

// chatRun is the command a resource is answering, if any.
func (u *user) chatRun(from string) *cmdRun {
	for _, r := range u.commands.runs {
		if r.from == from && r.chat {
			return r
		}
	}
	return nil
}

// chatAsk asks for the run's next field, or submits the stage when all
// are answered.
func (u *user) chatAsk(r *cmdRun) {
	r.chat = true
	st := r.stage
	if r.field == 0 && st.instructions != "" {
		u.say(r.from, st.instructions)
	}
	if r.field >= len(st.fields) {
		values := transports.Values{}
		for _, f := range st.fields {
			values[f.Name] = r.values[f.Name]
		}
		u.submitStage(r, values, func(o outcome) { u.chatOutcome(r, o) })
		return
	}
	f := st.fields[r.field]
	if f.Kind == transports.Secret && !r.warned {
		r.warned = true
		u.say(r.from, secretWarning)
	}
	u.say(r.from, prompt(f, st.values[f.Name]))
}

// prompt is the question for one field.
func prompt(f transports.Field, current string) string {
	q := f.Label
	if q == "" {
		q = f.Name
	}
	switch f.Kind {
	case transports.Bool:
		q += " (yes or no)"
	case transports.List:
		var opts []string
		for _, o := range f.Options {
			opts = append(opts, o.Value)
		}
		q += " (one of: " + strings.Join(opts, ", ") + ")"
	}
	switch {
	case current != "" && f.Kind == transports.Secret:
		q += " [send \".\" to keep the current one]"
	case current != "":
		q += " [now: " + current + "; \".\" keeps it]"
	case !f.Required && f.Default != "":
		q += " [\"-\" for the default, " + f.Default + "]"
	case !f.Required:
		q += " [\"-\" to leave it empty]"
	}
	return q + "?"
}

// chatAnswer records the answer to the field being asked.
func (u *user) chatAnswer(r *cmdRun, text string) {
	st := r.stage
	if r.field >= len(st.fields) {
		return
	}
	f := st.fields[r.field]
	if text == "." && f.Kind == transports.Secret && st.values[f.Name] != "" {
		// Kept: left empty, as in a form (see submitStage).
		r.values[f.Name] = ""
		r.field++
		u.chatAsk(r)
		return
	}
	v := text
	switch {
	case text == "." && st.values[f.Name] != "":
		v = st.values[f.Name]
	case text == "-" && !f.Required:
		v = ""
	case f.Kind == transports.Bool:
		switch strings.ToLower(text) {
		case "yes", "y", "true", "1", "oui":
			v = "true"
		case "no", "n", "false", "0", "non":
			v = "false"
		}
	}
	if f.Kind != transports.Secret {
		v = strings.TrimSpace(v)
	}
	if err := checkValue(f, &v); err != nil {
		u.say(r.from, "Not accepted: "+err.Error()+". "+prompt(f, st.values[f.Name]))
		return
	}
	r.values[f.Name] = v
	r.field++
	u.chatAsk(r)
}

// chatOutcome continues with the next stage or ends the run.
func (u *user) chatOutcome(r *cmdRun, o outcome) {
	if o.note != "" {
		prefix := ""
		if o.noteType == "error" {
			prefix = "Error: "
		}
		u.say(r.from, prefix+o.note)
	}
	if o.next == nil {
		return
	}
	r.field = 0
	if o.next == r.stage && o.noteType == "error" {
		u.say(r.from, "Let's try again.")
	}
	u.chatAsk(r)
}

// say sends a chat message from the transport to one resource.
func (u *user) say(to, body string) {
	_ = u.send(messageOut{From: u.g.domain.String(), To: to, ID: u.g.newID(), Type: "chat", Body: body})
}
