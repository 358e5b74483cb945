package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"passerelle.dev/passerelle/internal/config"
	"passerelle.dev/passerelle/registry"
)

// usersCommand runs `passerelle users list|remove`.
func usersCommand(ctx context.Context, cfg *config.Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return exitError{2, errors.New("users: say list or remove")}
	}
	switch args[0] {
	case "list":
		if len(args) != 1 {
			return exitError{2, errors.New("users list takes no arguments")}
		}
		return listUsers(ctx, cfg, out)
	case "remove":
		if len(args) < 2 || len(args) > 3 {
			return exitError{2, errors.New("usage: users remove JID [TRANSPORT]")}
		}
		transport := ""
		if len(args) == 3 {
			transport = args[2]
		}
		return removeUser(ctx, cfg, args[1], transport, out)
	default:
		return exitError{2, fmt.Errorf("users: unknown command %q", args[0])}
	}
}

// openStore opens the database for an admin command; a running gateway's
// lock makes it fail at once with a clear message.
func openStore(cfg *config.Config, readOnly bool) (*registry.DB, error) {
	db, err := registry.Open(cfg.Database.Path, registry.Options{KeyFile: cfg.Database.KeyFile, Timeout: time.Second, ReadOnly: readOnly})
	if errors.Is(err, registry.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by a running gateway: stop it first (systemctl stop passerelle)", cfg.Database.Path)
	}
	return db, err
}

func listUsers(ctx context.Context, cfg *config.Config, out io.Writer) error {
	db, err := openStore(cfg, true)
	if err != nil {
		return err
	}
	defer db.Close()
	regs, err := db.Registrations(ctx, registry.ListOptions{IncludeCorrupt: true})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tTRANSPORT\tSETTINGS\tREGISTERED")
	corrupt := 0
	for _, r := range regs {
		settings, created := describeFields(r.Fields), r.Created.UTC().Format(time.RFC3339)
		if r.Corrupt != "" {
			corrupt++
			settings, created = "CORRUPT RECORD ("+r.Corrupt+")", "-"
		}
		// Every stored value is printed escaped: a JID or setting may hold
		// terminal control sequences.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(r.User), printable(r.Transport), printable(settings), created)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d registration(s)\n", len(regs))
	if corrupt > 0 {
		fmt.Fprintf(out, "%d corrupt record(s): the gateway skips them; remove them with `users remove JID TRANSPORT`\n", corrupt)
	}
	return nil
}

// describeFields prints the plain settings; secrets are never read here.
func describeFields(fields map[string]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + fields[k]
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// printable escapes what a terminal would act on rather than show: control
// characters (C0, DEL, C1: escape sequences, tabs, newlines), Unicode
// direction overrides, and bytes that are not UTF-8.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r), r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func removeUser(ctx context.Context, cfg *config.Config, user, transport string, out io.Writer) error {
	j, err := jid.Parse(user)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return exitError{2, fmt.Errorf("%q is not a bare JID (user@domain)", user)}
	}
	db, err := openStore(cfg, false)
	if err != nil {
		return err
	}
	defer db.Close()
	regs, err := db.Registrations(ctx, registry.ListOptions{User: j.String(), Transport: transport, IncludeCorrupt: true})
	if err != nil {
		return err
	}
	if len(regs) == 0 && transport != "" {
		return fmt.Errorf("%s has no registration with %s", j, transport)
	} else if len(regs) == 0 {
		return fmt.Errorf("%s has no registration", j)
	}
	for _, r := range regs {
		if err := db.DeleteRegistration(ctx, r.User, r.Transport); err != nil {
			return err
		}
		fmt.Fprintf(out, "removed %s from %s\n", printable(r.User), printable(r.Transport))
	}
	return nil
}
