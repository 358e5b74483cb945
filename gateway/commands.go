package gateway

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"passerelle.dev/passerelle/transports"
)

// commands is the user's command runs, from every front end (ad-hoc,
// chat, XEP-0077).
type commands struct {
	runs        map[string]*cmdRun // commands being run, by session id
	nextRun     uint64
	sweep       *time.Timer // wakes the loop when a run may have expired
	regInFlight bool        // a Register call is under way
	regRelease  func()      // gives back the place the registration in flight holds
}

// A command is one action a user can take, declared once with its forms.
// commands_adhoc.go serves it as an XEP-0050 command, commands_chat.go as a
// chat command, and registration is also XEP-0077 (register.go).
type command struct {
	node  string // the ad-hoc node
	word  string // the chat keyword
	name  string
	admin bool
	// when reports whether the command applies to the user now (nil: always).
	when func(u *user) bool
	// first returns the first stage.
	first func(u *user) *stage
}

// stage is one step of a command: a form to fill, whose submit decides
// what comes next. A stage without fields is submitted at once.
type stage struct {
	title        string
	instructions string
	fields       []transports.Field
	values       transports.Values // current values shown in the form
	// submit handles the stage's values and calls done exactly once, at
	// once or later from the user's loop.
	submit func(u *user, run *cmdRun, v transports.Values, done func(outcome))
}

// outcome is what follows a submitted stage: another stage, or the end
// with a note. An error note with a stage asks again.
type outcome struct {
	next     *stage
	note     string
	noteType string // info, warn or error
}

func finished(note string) outcome { return outcome{note: note, noteType: "info"} }

func failed(note string, again *stage) outcome {
	return outcome{note: note, noteType: "error", next: again}
}

// cmdRun is one execution of a command by one resource.
type cmdRun struct {
	id      string
	cmd     *command
	from    string // the full JID that runs it
	stage   *stage
	prev    []*stage
	values  transports.Values // collected over the stages
	expires time.Time
	busy    bool // a submission is being handled

	// chat front end
	chat   bool // run through chat messages
	field  int  // the field being asked
	warned bool // the warning about secrets in chat was given
}

// Limits on command runs.
const (
	maxCmdRuns = 10
	cmdTTL     = 10 * time.Minute
)

// commandsFor lists the commands offered to the user, in a fixed order.
func (u *user) commandsFor() []*command {
	var out []*command
	admin := u.isAdmin()
	for _, c := range u.g.cmds {
		if (c.admin && !admin) || (c.when != nil && !c.when(u)) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func (u *user) isAdmin() bool {
	return u.g.cfg.IsAdmin != nil && u.g.cfg.IsAdmin(u.jid.String())
}

// findCommand returns a command by node or chat word, if the user may run
// it now.
func (u *user) findCommand(key string) (*command, bool) {
	for _, c := range u.commandsFor() {
		if c.node == key || c.word == key {
			return c, true
		}
	}
	return nil, false
}

// startRun begins a command for a resource.
func (u *user) startRun(c *command, from string) *cmdRun {
	u.expireRuns()
	if len(u.commands.runs) >= maxCmdRuns {
		oldest := ""
		for id, r := range u.commands.runs {
			if oldest == "" || r.expires.Before(u.commands.runs[oldest].expires) {
				oldest = id
			}
		}
		delete(u.commands.runs, oldest)
	}
	u.commands.nextRun++
	r := &cmdRun{
		id:      strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatUint(u.commands.nextRun, 10),
		cmd:     c,
		from:    from,
		values:  transports.Values{},
		expires: time.Now().Add(cmdTTL),
	}
	r.stage = c.first(u)
	u.commands.runs[r.id] = r
	u.scheduleRunSweep()
	return r
}

// scheduleRunSweep makes sure one timer wakes the loop when the earliest
// run may have expired, so that an otherwise idle loop can end. There is
// one such timer per user, not one per run.
func (u *user) scheduleRunSweep() {
	if u.commands.sweep != nil || len(u.commands.runs) == 0 {
		return
	}
	var first time.Time
	for _, r := range u.commands.runs {
		if first.IsZero() || r.expires.Before(first) {
			first = r.expires
		}
	}
	// A busy run may be past its expiry: look again a second later.
	wait := max(time.Until(first), 0) + time.Second
	u.commands.sweep = time.AfterFunc(wait, func() { u.post(runsExpired{}) })
}

// sweepRuns ends the expired runs and schedules the next sweep.
func (u *user) sweepRuns() {
	u.commands.sweep = nil
	u.expireRuns()
	u.scheduleRunSweep()
}

// stopRunSweep stops the sweep timer as the loop ends.
func (u *user) stopRunSweep() {
	if u.commands.sweep != nil {
		u.commands.sweep.Stop()
		u.commands.sweep = nil
	}
}

func (u *user) expireRuns() {
	now := time.Now()
	for id, r := range u.commands.runs {
		if now.After(r.expires) && !r.busy {
			delete(u.commands.runs, id)
		}
	}
}

// submitStage checks a stage's values and hands them to its submit; done
// gets the outcome. The run ends unless the outcome has a next stage.
func (u *user) submitStage(r *cmdRun, v transports.Values, done func(outcome)) {
	st := r.stage
	clean := transports.Values{}
	var problems []string
	for _, f := range st.fields {
		val := v[f.Name]
		if val == "" && f.Kind == transports.Secret && st.values[f.Name] != "" {
			// An empty secret keeps the current one: register takes it, once
			// it has checked what the secret is bound to.
			clean[f.Name], r.values[f.Name] = "", ""
			continue
		}
		if err := checkValue(f, &val); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		clean[f.Name] = val
		r.values[f.Name] = val
	}
	if len(problems) > 0 {
		done(failed(joinProblems(problems), st))
		return
	}
	r.busy = true
	r.expires = time.Now().Add(cmdTTL)
	st.submit(u, r, clean, func(o outcome) {
		r.busy = false
		if o.next != nil {
			if o.next != st {
				r.prev = append(r.prev, st)
			}
			r.stage = o.next
		} else {
			delete(u.commands.runs, r.id)
		}
		done(o)
	})
}

func joinProblems(p []string) string {
	sort.Strings(p)
	return strings.Join(p, "; ") + "."
}

// noteOf is the text of a stanza error for a note.
func noteOf(e *stanza.Error) string {
	if t := e.Text[""]; t != "" {
		return t
	}
	return string(e.Condition)
}
