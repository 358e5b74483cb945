// Command passerelle runs the Passerelle XMPP gateway and administers its
// database. It owns the process: config, one gateway per configured
// transport, the registry file, signals and the metrics endpoint; the
// logic lives in the packages.
//
// Usage:
//
//	passerelle -config FILE                  run the gateway
//	passerelle -config FILE check-config     validate the config and describe it
//	passerelle -config FILE users list       list registrations
//	passerelle -config FILE users remove JID [TRANSPORT]
//	passerelle -config FILE backup DEST      copy the database of a stopped gateway
//	passerelle version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `usage:
  passerelle -config FILE                        run the gateway
  passerelle -config FILE check-config           validate the config and describe it
  passerelle -config FILE users list             list registered users
  passerelle -config FILE users remove JID [TRANSPORT]
                                                 remove a user's registrations
  passerelle -config FILE backup DEST            copy the database (gateway stopped;
                                                 a running one backs up on SIGUSR1)
  passerelle version                             print the version
`

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "passerelle:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// run parses the command line and runs the chosen command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("passerelle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "/etc/passerelle/passerelle.toml", "configuration `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{2, err}
	}
	rest := fs.Args()
	if len(rest) > 0 && rest[0] == "version" {
		fmt.Fprintln(stdout, "passerelle", version())
		return nil
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return exitError{2, err}
	}
	if len(rest) == 0 {
		return serve(ctx, cfg, stderr)
	}
	switch rest[0] {
	case "check-config":
		fmt.Fprint(stdout, cfg.Summary())
		return nil
	case "users":
		return usersCommand(ctx, cfg, rest[1:], stdout)
	case "backup":
		return backupCommand(ctx, cfg, rest[1:], stdout)
	default:
		fmt.Fprint(stderr, usage)
		return exitError{2, fmt.Errorf("unknown command %q", rest[0])}
	}
}

// version is the module version, or the VCS revision of a development build.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
