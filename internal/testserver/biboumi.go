package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// BiboumiConfig describes a biboumi (the C++ XMPP-IRC gateway, Debian
// package biboumi) to start as an external component of a running server.
type BiboumiConfig struct {
	// Domain and Secret are the component's, as the XMPP server lists it.
	Domain string
	Secret string
	// ComponentAddr is the XMPP server's component listener, 127.0.0.1:port.
	ComponentAddr string
	// IRCServer is the only IRC server biboumi reaches (fixed_irc_server),
	// so that rooms are "#chan@Domain"; IRCPort is its plain-text port.
	IRCServer string
	IRCPort   int
	// Users are the bare JIDs given their per-user options before start:
	// the IRC port and no TLS ports (biboumi would try 6697, 6670, then
	// 6667), the throttle limit, and history recording.
	Users []string
	// ThrottleLimit is biboumi's per-server throttle limit (its default is
	// 10 lines, then one a second); a negative value disables throttling.
	ThrottleLimit int
	// RecordHistory keeps biboumi's default of saving every channel message
	// in its database; off by default here.
	RecordHistory bool
	// Roster puts each user in biboumi's roster table, as after a presence
	// subscription: biboumi sends them its presence at start-up.
	Roster bool
	// LogLevel is biboumi's log_level: 0 debug … 3 error (default 1).
	LogLevel int
	// NoWait returns as soon as the process is started, instead of waiting
	// until it is connected to the XMPP server.
	NoWait bool
	// Database, if set, is a database file prepared by an earlier
	// BiboumiDatabase call, copied instead of written again.
	Database string
}

// Biboumi is a running biboumi.
type Biboumi struct {
	RunDir  string
	Started time.Time // just before the process was started

	logPath string
	proc    *process
}

// biboumiSchema is biboumi 9's sqlite schema, created ahead of it so that
// per-user options can be written before it starts (it adds any column a
// newer version needs).
const biboumiSchema = `
CREATE TABLE IF NOT EXISTS muclogline_ (id_ INTEGER PRIMARY KEY AUTOINCREMENT,uuid_ TEXT,owner_ TEXT,ircchanname_ TEXT,ircservername_ TEXT,date_ INTEGER,body_ TEXT,nick_ TEXT);
CREATE TABLE IF NOT EXISTS globaloptions_ (id_ INTEGER PRIMARY KEY AUTOINCREMENT,owner_ TEXT,maxhistorylength_ INTEGER,recordhistory_ INTEGER,persistent_ INTEGER);
CREATE TABLE IF NOT EXISTS ircserveroptions_ (id_ INTEGER PRIMARY KEY AUTOINCREMENT,owner_ TEXT,server_ TEXT,pass_ TEXT,tlsports_ TEXT,ports_ TEXT,username_ TEXT,realname_ TEXT,verifycert_ INTEGER,trustedfingerprint_ TEXT,encodingout_ TEXT,encodingin_ TEXT,maxhistorylength_ INTEGER,address_ TEXT,nick_ TEXT,saslpassword_ TEXT,throttlelimit_ INTEGER);
CREATE TABLE IF NOT EXISTS ircchanneloptions_ (id_ INTEGER PRIMARY KEY AUTOINCREMENT,owner_ TEXT,server_ TEXT,channel_ TEXT,encodingout_ TEXT,encodingin_ TEXT,maxhistorylength_ INTEGER,persistent_ INTEGER,recordhistory_ INTEGER);
CREATE TABLE IF NOT EXISTS roster (local TEXT,remote TEXT);
CREATE TABLE IF NOT EXISTS after_connection_commands_ (id_ INTEGER PRIMARY KEY AUTOINCREMENT,fk_ INTEGER,afterconnectioncommand_ TEXT);
CREATE INDEX IF NOT EXISTS archive_index ON muclogline_(owner_,ircchanname_,ircservername_);
`

// BiboumiDatabase writes biboumi's database with the users' options of
// cfg to path, with the sqlite3 command-line tool.
func BiboumiDatabase(t tb.TB, path string, cfg BiboumiConfig) {
	t.Helper()
	Require(t, "sqlite3", "sqlite3")
	var b strings.Builder
	b.WriteString(biboumiSchema)
	b.WriteString("BEGIN;\n")
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	record := 0
	if cfg.RecordHistory {
		record = 1
	}
	for _, u := range cfg.Users {
		fmt.Fprintf(&b, "INSERT INTO globaloptions_ (owner_,maxhistorylength_,recordhistory_,persistent_) VALUES (%s,20,%d,0);\n", q(u), record)
		fmt.Fprintf(&b, "INSERT INTO ircserveroptions_ (owner_,server_,pass_,tlsports_,ports_,username_,realname_,verifycert_,trustedfingerprint_,encodingout_,encodingin_,maxhistorylength_,address_,nick_,saslpassword_,throttlelimit_) VALUES (%s,%s,'','',%s,'','',1,'','','',20,'','','',%d);\n",
			q(u), q(cfg.IRCServer), q(fmt.Sprint(cfg.IRCPort)), cfg.ThrottleLimit)
		if cfg.Roster {
			fmt.Fprintf(&b, "INSERT INTO roster (local,remote) VALUES (%s,%s);\n", q(cfg.Domain), q(u))
		}
	}
	b.WriteString("COMMIT;\n")
	cmd := exec.Command("sqlite3", path)
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("biboumi database %s: sqlite3: %v: %s", path, err, out)
	}
}

// StartBiboumi starts a biboumi with a private config, database and log
// under its own run directory, connecting as a component to the XMPP server
// at cfg.ComponentAddr; it stops when the test ends.
func StartBiboumi(t tb.TB, cfg BiboumiConfig) *Biboumi {
	t.Helper()
	Require(t, "biboumi", "biboumi")
	if cfg.LogLevel == 0 {
		cfg.LogLevel = 1
	}
	host, port, ok := strings.Cut(cfg.ComponentAddr, ":")
	if !ok {
		t.Fatalf("biboumi: component address %q is not host:port", cfg.ComponentAddr)
	}
	dir := runDir(t, "biboumi")
	db := filepath.Join(dir, "biboumi.sqlite")
	if cfg.Database != "" {
		raw, err := os.ReadFile(cfg.Database)
		if err != nil {
			t.Fatalf("biboumi: %v", err)
		}
		writeFile(t, db, string(raw), 0o644)
	} else {
		BiboumiDatabase(t, db, cfg)
	}
	b := &Biboumi{RunDir: dir, logPath: filepath.Join(dir, "biboumi.log")}
	cfgPath := filepath.Join(dir, "biboumi.cfg")
	// policy_directory: no TLS policy files from /etc; identd_port=0: no
	// identd on port 113.
	writeFile(t, cfgPath, fmt.Sprintf(`hostname=%s
password=%s
xmpp_server_ip=%s
port=%s
db_name=%s
log_file=%s
log_level=%d
fixed_irc_server=%s
identd_port=0
realname_customization=true
policy_directory=%s
`, cfg.Domain, cfg.Secret, host, port, db, b.logPath, cfg.LogLevel, cfg.IRCServer, dir), 0o644)
	b.Started = time.Now()
	b.proc = startProcess(t, "biboumi", filepath.Join(dir, "biboumi.out"), []string{"biboumi", cfgPath})
	t.Cleanup(b.Stop)
	if !cfg.NoWait {
		if err := b.WaitLog("Authenticated with the XMPP server", 15*time.Second); err != nil {
			b.Stop()
			t.Fatal(err)
		}
	}
	return b
}

// WaitLog waits until the log holds text, or the process ends.
func (b *Biboumi) WaitLog(text string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if raw, err := os.ReadFile(b.logPath); err == nil && strings.Contains(string(raw), text) {
			return nil
		}
		select {
		case <-b.proc.exited:
			return fmt.Errorf("biboumi exited before logging %q:\n%s", text, b.Log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("biboumi did not log %q within %v:\n%s", text, timeout, b.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is the biboumi process's id.
func (b *Biboumi) PID() int { return b.proc.cmd.Process.Pid }

// Stop stops biboumi: it quits its IRC connections and exits.
func (b *Biboumi) Stop() {
	if b.proc != nil {
		b.proc.stop()
	}
}

// Log returns the end of biboumi's log and output.
func (b *Biboumi) Log() string {
	return tail(b.logPath) + "\n" + tail(filepath.Join(b.RunDir, "biboumi.out"))
}
