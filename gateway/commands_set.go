package gateway

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/registry"
	"passerelle.dev/passerelle/transports"
)

// newCommandSet lists every command, user commands first; each gateway
// builds it once. XEP-0133 names the admin nodes where it has a matching
// command.
func newCommandSet() []*command {
	return []*command{
		{node: "register", word: "register", name: "Register", when: unregistered, first: (*user).registerStage},
		{node: "settings", word: "settings", name: "Show and change settings", when: registered, first: (*user).settingsStage},
		{node: "status", word: "status", name: "Status and active sessions", first: (*user).statusStage},
		{node: "reconnect", word: "reconnect", name: "Reconnect to the network", when: registered, first: (*user).reconnectStage},
		{node: "unregister", word: "unregister", name: "Unregister", when: registered, first: (*user).unregisterStage},
		{node: "help", word: "help", name: "Help", first: (*user).helpStage},

		{node: nsAdmin + "#get-registered-users-list", word: "users", name: "List users", admin: true, first: (*user).usersStage},
		{node: "http://passerelle.dev/admin#show-user", word: "user", name: "Show a user", admin: true, first: (*user).showUserStage},
		{node: nsAdmin + "#end-user-session", word: "disconnect", name: "Disconnect a user", admin: true, first: (*user).disconnectStage},
		{node: nsAdmin + "#delete-user", word: "remove", name: "Remove a user", admin: true, first: (*user).removeStage},
		{node: nsAdmin + "#announce", word: "announce", name: "Announce to all online users", admin: true, first: (*user).announceStage},
		{node: "http://passerelle.dev/admin#stats", word: "stats", name: "Gateway statistics", admin: true, first: (*user).statsStage},
	}
}

func registered(u *user) bool   { return u.reg != nil }
func unregistered(u *user) bool { return u.reg == nil }

// nsAdmin is the XEP-0133 node prefix.
const nsAdmin = "http://jabber.org/protocol/admin"

// registerStage asks first for the required fields, then for the optional
// ones, then registers.
func (u *user) registerStage() *stage {
	var required, optional []transports.Field
	for _, f := range u.g.info.Fields {
		if f.Required {
			required = append(required, f)
		} else {
			optional = append(optional, f)
		}
	}
	finish := func(u *user, r *cmdRun, _ transports.Values, done func(outcome)) {
		first := r.stage
		if len(r.prev) > 0 {
			first = r.prev[0]
		}
		u.register(r.values, func(e *stanza.Error) {
			if e != nil {
				done(failed("Registration refused: "+noteOf(e), first))
				return
			}
			done(finished("Registered with " + u.g.cfg.Name + ". Approve the transport's presence subscription to be logged in when you are online."))
		})
	}
	second := &stage{title: "Register: options", instructions: "Optional settings; leave empty for the defaults.", fields: optional, submit: finish}
	st := &stage{title: "Register with " + u.g.cfg.Name, instructions: u.g.info.Instructions, fields: required}
	st.submit = func(u *user, r *cmdRun, v transports.Values, done func(outcome)) {
		if len(optional) == 0 {
			finish(u, r, v, done)
			return
		}
		done(outcome{next: second})
	}
	return st
}

// settingsStage shows the registration with its current values; a
// submission re-registers.
func (u *user) settingsStage() *stage {
	st := &stage{title: "Settings for " + u.g.cfg.Name, instructions: "Change what you need; an empty password keeps the current one.", fields: u.g.info.Fields, values: transports.Values{}}
	if u.reg != nil {
		st.values = registrationValues(u.reg)
	}
	st.submit = func(u *user, r *cmdRun, v transports.Values, done func(outcome)) {
		u.register(v, func(e *stanza.Error) {
			if e != nil {
				done(failed("Settings refused: "+noteOf(e), st))
				return
			}
			done(finished("Settings saved."))
		})
	}
	return st
}

func (u *user) statusStage() *stage {
	return &stage{submit: func(u *user, _ *cmdRun, _ transports.Values, done func(outcome)) {
		done(finished(u.statusText()))
	}}
}

// statusText describes the user's registration and legacy session.
func (u *user) statusText() string {
	if u.reg == nil {
		return "You are not registered with " + u.g.cfg.Name + ". Send \"register\" to start."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Registered with %s", u.g.cfg.Name)
	for _, f := range u.g.info.Fields {
		if v := u.reg.Fields[f.Name]; v != "" && f.Kind != transports.Secret {
			fmt.Fprintf(&b, "; %s: %s", strings.ToLower(f.Label), v)
		}
	}
	fmt.Fprintf(&b, ".\nSession: %s.\n", u.sessionText())
	fmt.Fprintf(&b, "Online resources: %d. Rooms: %d. Contacts online: %d.", len(u.resources.online), len(u.rooms.joined), len(u.contacts.last))
	for _, r := range u.sortedRooms() {
		fmt.Fprintf(&b, "\n• %s as %s", r.jid, r.nick)
	}
	return b.String()
}

func (u *user) reconnectStage() *stage {
	return &stage{submit: func(u *user, _ *cmdRun, _ transports.Values, done func(outcome)) {
		if !u.wantSession() {
			done(failed("You are offline for the transport: make it see your presence first.", nil))
			return
		}
		u.reconnect("Reconnecting, as you asked.")
		done(finished("Reconnecting to " + u.g.cfg.Name + "."))
	}}
}

func (u *user) unregisterStage() *stage {
	return &stage{
		title:        "Unregister from " + u.g.cfg.Name,
		instructions: "This deletes your settings and contacts on this gateway.",
		fields:       []transports.Field{{Name: "confirm", Label: "Really unregister?", Kind: transports.Bool, Required: true}},
		submit: func(u *user, _ *cmdRun, v transports.Values, done func(outcome)) {
			if v["confirm"] != "true" {
				done(finished("Nothing changed: you are still registered."))
				return
			}
			if e := u.unregister(); e != nil {
				done(failed(noteOf(e), nil))
				return
			}
			done(finished("Unregistered: your settings and contacts on this gateway are deleted."))
		},
	}
}

func (u *user) helpStage() *stage {
	return &stage{submit: func(u *user, _ *cmdRun, _ transports.Values, done func(outcome)) {
		var b strings.Builder
		b.WriteString("Commands (send the word, or use your client's ad-hoc commands):")
		for _, c := range u.commandsFor() {
			fmt.Fprintf(&b, "\n• %s — %s", c.word, c.name)
		}
		b.WriteString("\nWhile a command asks questions, send \"cancel\" to stop it.")
		done(finished(b.String()))
	}}
}

// usersPage is how many users one page of the admin listing shows.
const usersPage = 100

// usersStage lists the registered users a page at a time.
func (u *user) usersStage() *stage {
	return u.usersPageStage("", 1)
}

func (u *user) usersPageStage(after string, page int) *stage {
	regs, err := u.g.registrations(u.ctx, after, usersPage+1)
	st := &stage{title: fmt.Sprintf("Registered users, page %d", page)}
	if err != nil {
		st.instructions = "The user list cannot be read: " + err.Error()
		st.submit = func(_ *user, _ *cmdRun, _ transports.Values, done func(outcome)) { done(finished("")) }
		return st
	}
	more := len(regs) > usersPage
	if more {
		regs = regs[:usersPage]
	}
	var b strings.Builder
	for _, r := range regs {
		b.WriteString(r.User + "\n")
	}
	if len(regs) == 0 {
		b.WriteString("(no users)\n")
	}
	if more {
		b.WriteString("More on the next page.")
	} else {
		b.WriteString("End of the list.")
	}
	st.instructions = strings.TrimSpace(b.String())
	last := ""
	if len(regs) > 0 {
		last = regs[len(regs)-1].User
	}
	st.submit = func(u *user, r *cmdRun, _ transports.Values, done func(outcome)) {
		if !more {
			note := "End of the list."
			if !r.chat {
				note = st.instructions
			}
			done(finished(note))
			return
		}
		done(outcome{next: u.usersPageStage(last, page+1)})
	}
	return st
}

// jidField asks for a user's bare JID.
var jidField = transports.Field{Name: "jid", Label: "User (bare JID)", Kind: transports.Text, Required: true}

func (u *user) showUserStage() *stage {
	return &stage{title: "Show a user", fields: []transports.Field{jidField}, submit: func(u *user, _ *cmdRun, v transports.Values, done func(outcome)) {
		done(finished(u.g.describeUser(u, v["jid"])))
	}}
}

func (u *user) disconnectStage() *stage {
	return &stage{title: "Disconnect a user", instructions: "Closes the user's legacy session; they are logged in again when they next come online.", fields: []transports.Field{jidField}, submit: func(u *user, _ *cmdRun, v transports.Values, done func(outcome)) {
		if !u.g.dispatchTo(v["jid"], adminAction{kind: "disconnect"}) {
			done(finished(v["jid"] + " has no active session."))
			return
		}
		done(finished("Disconnecting " + v["jid"] + "."))
	}}
}

func (u *user) removeStage() *stage {
	return &stage{title: "Remove a user", instructions: "Deletes the user's registration and contacts on this gateway.", fields: []transports.Field{jidField}, submit: func(u *user, _ *cmdRun, v transports.Values, done func(outcome)) {
		target := strings.ToLower(v["jid"])
		if _, err := u.g.cfg.Store.Registration(u.ctx, target, u.g.domain.String()); err != nil {
			done(failed(target+" is not registered.", nil))
			return
		}
		if target == u.jid.String() {
			if e := u.unregister(); e != nil {
				done(failed(noteOf(e), nil))
				return
			}
		} else {
			u.g.dispatchTo(target, adminAction{kind: "remove", force: true})
		}
		done(finished("Removing " + target + "."))
	}}
}

func (u *user) announceStage() *stage {
	return &stage{title: "Announce", fields: []transports.Field{{Name: "body", Label: "Message to every online user", Kind: transports.Text, Required: true}}, submit: func(u *user, _ *cmdRun, v transports.Values, done func(outcome)) {
		n := u.g.announce(v["body"])
		done(finished(fmt.Sprintf("Sent to %d online users.", n)))
	}}
}

func (u *user) statsStage() *stage {
	return &stage{submit: func(u *user, _ *cmdRun, _ transports.Values, done func(outcome)) {
		done(finished(u.g.statsText(u)))
	}}
}

// describeUser tells an admin about one user: registration and session.
func (g *Gateway) describeUser(u *user, bare string) string {
	bare = strings.ToLower(bare)
	r, err := g.cfg.Store.Registration(u.ctx, bare, g.domain.String())
	if err != nil {
		return bare + " is not registered."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is registered", bare)
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "; %s: %s", k, r.Fields[k])
	}
	b.WriteString(".\n")
	snap := g.snapshot(bare)
	if snap == nil {
		b.WriteString("No active session.")
	} else {
		fmt.Fprintf(&b, "Session: %s; online resources: %d; rooms: %d.", snap.session, snap.resources, snap.rooms)
	}
	return b.String()
}

func (g *Gateway) statsText(u *user) string {
	regs := 0
	if err := g.eachRegistration(u.ctx, func(registry.Registration) error { regs++; return nil }); err != nil {
		u.log.Warn("cannot count the registrations", "err", err)
	}
	active, sessions := g.userCounts()
	to, from := g.metrics.counts()
	return fmt.Sprintf("Registered users: %d. Active users: %d. Legacy sessions: %d.\nMessages to the network: %d. Messages from the network: %d.\nUp for %s.",
		regs, active, sessions, to, from, time.Since(g.started).Round(time.Second))
}
