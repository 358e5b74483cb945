package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// InspircdConfig configures a private InspIRCd.
type InspircdConfig struct {
	// ServerName is the server's name (default "irc2.test").
	ServerName string
}

// Inspircd is a running InspIRCd on loopback, with MONITOR: the IRC server
// for what ngircd lacks.
type Inspircd struct {
	RunDir string

	name    string
	port    int
	cfgPath string
	proc    *process
}

// StartInspircd starts InspIRCd with a generated config in a private run
// dir; it is stopped when the test ends.
func StartInspircd(t tb.TB, cfg InspircdConfig) *Inspircd {
	t.Helper()
	Require(t, "inspircd", "inspircd")
	if cfg.ServerName == "" {
		cfg.ServerName = "irc2.test"
	}
	dir := runDir(t, "inspircd")
	s := &Inspircd{RunDir: dir, name: cfg.ServerName, port: freePorts(t, 1)[0], cfgPath: filepath.Join(dir, "inspircd.conf")}
	conf := fmt.Sprintf(`<server name="%[1]s" description="Passerelle test" network="PasserelleTest">
<admin name="test" nick="test" email="test@localhost">
<bind address="127.0.0.1" port="%[2]d" type="clients">
<connect name="main" allow="*" timeout="60" threshold="1000" maxchans="100" localmax="1000" globalmax="1000" maxconnwarn="no" resolvehostnames="no" useident="no" limit="5000" commandrate="100000" fakelag="no" pingfreq="120" hardsendq="1M" softsendq="100000" recvq="100000">
<pid file="%[3]s">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="%[4]s">
<module name="monitor">
<security announceinvites="dynamic">
<performance netbuffersize="10240" somaxconn="128" softlimit="12800" clonesonconnect="no">
<dns timeout="1">
`, cfg.ServerName, s.port, filepath.Join(dir, "inspircd.pid"), filepath.Join(dir, "ircd.log"))
	writeFile(t, s.cfgPath, conf, 0o644)
	argv := []string{"inspircd", "--nofork", "--config", s.cfgPath}
	if os.Geteuid() == 0 {
		argv = append(argv, "--runasroot")
	}
	s.proc = startProcess(t, "inspircd", filepath.Join(dir, "inspircd.out"), argv)
	t.Cleanup(s.Stop)
	if err := s.proc.waitPort(s.Addr(), 15*time.Second); err != nil {
		s.proc.stop()
		t.Fatalf("%v\n%s", err, s.Log())
	}
	return s
}

// Addr is the client listener, 127.0.0.1:port.
func (s *Inspircd) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Port is the client listener's port.
func (s *Inspircd) Port() int { return s.port }

// Name is the server's name.
func (s *Inspircd) Name() string { return s.name }

// Stop stops the server; calling it again does nothing.
func (s *Inspircd) Stop() {
	if s.proc != nil {
		s.proc.stop()
	}
}

// Log is the tail of the server's output and log, for failure messages.
func (s *Inspircd) Log() string {
	return tail(filepath.Join(s.RunDir, "inspircd.out")) + "\n" + tail(filepath.Join(s.RunDir, "ircd.log"))
}
