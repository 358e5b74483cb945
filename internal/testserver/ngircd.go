package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// NgircdConfig describes an ngircd to start.
type NgircdConfig struct {
	// ServerName is the IRC server name (default "irc.test").
	ServerName string
	// Channels are predefined channels, such as "#lobby": ngircd gives them
	// mode +P (persistent), so they survive being empty and nobody who joins
	// gets operator status.
	Channels []string
	// TLS adds a TLS listener with a certificate for ServerName and
	// 127.0.0.1, signed by a CA written to CAFile.
	TLS bool
}

// Ngircd is a running ngircd IRC server on loopback.
type Ngircd struct {
	// RunDir holds the configuration and the log.
	RunDir string

	name    string
	port    int
	tlsPort int
	caFile  string
	cfgPath string
	proc    *process
}

// StartNgircd starts a private ngircd on a free loopback port, with flood
// penalties and per-IP and per-user limits lifted and nicks of up to 31
// characters (ngircd's MaxNickLength counts a terminating NUL); it stops
// when the test ends.
func StartNgircd(t tb.TB, cfg NgircdConfig) *Ngircd {
	t.Helper()
	Require(t, "ngircd", "ngircd")
	if cfg.ServerName == "" {
		cfg.ServerName = "irc.test"
	}
	dir := runDir(t, "ngircd")
	n := &Ngircd{
		RunDir:  dir,
		name:    cfg.ServerName,
		port:    freePorts(t, 1)[0],
		cfgPath: filepath.Join(dir, "ngircd.conf"),
	}
	incDir := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(incDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[Global]
	Name = %s
	Info = passerelle test server
	AdminInfo1 = passerelle tests
	AdminInfo2 = loopback
	AdminEMail = root@localhost
	Listen = 127.0.0.1
	Ports = %d
	MotdPhrase = passerelle test server
`, cfg.ServerName, n.port)
	if os.Geteuid() == 0 {
		b.WriteString("\tServerUID = 65534\n\tServerGID = 65534\n")
	}
	fmt.Fprintf(&b, `[Limits]
	MaxPenaltyTime = 0
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxNickLength = 32
	PingTimeout = 120
	PongTimeout = 20
[Options]
	DNS = no
	Ident = no
	PAM = no
	IncludeDir = %s
`, incDir)
	if cfg.TLS {
		n.tlsPort = freePorts(t, 1)[0]
		cert, key, ca := writeTestCert(t, dir, cfg.ServerName)
		n.caFile = ca
		fmt.Fprintf(&b, "[SSL]\n\tCertFile = %s\n\tKeyFile = %s\n\tPorts = %d\n", cert, key, n.tlsPort)
	}
	for _, ch := range cfg.Channels {
		fmt.Fprintf(&b, "[Channel]\n\tName = %s\n\tModes = +tn\n", ch)
	}
	writeFile(t, n.cfgPath, b.String(), 0o644)
	n.start(t)
	t.Cleanup(n.Stop)
	return n
}

func (n *Ngircd) start(t tb.TB) {
	t.Helper()
	n.proc = startProcess(t, "ngircd", filepath.Join(n.RunDir, "ngircd.log"),
		[]string{"ngircd", "-n", "-f", n.cfgPath})
	if err := n.proc.waitPort(n.Addr(), 15*time.Second); err != nil {
		n.proc.stop()
		t.Fatal(err)
	}
}

// Addr returns the client address, host:port.
func (n *Ngircd) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

// Port returns the client port.
func (n *Ngircd) Port() int { return n.port }

// TLSPort is the TLS listener's port (0 without NgircdConfig.TLS).
func (n *Ngircd) TLSPort() int { return n.tlsPort }

// CAFile is the PEM file of the CA that signed the server's certificate.
func (n *Ngircd) CAFile() string { return n.caFile }

// PID is the server process's id.
func (n *Ngircd) PID() int { return n.proc.cmd.Process.Pid }

// Name returns the server name, the prefix of its numerics.
func (n *Ngircd) Name() string { return n.name }

// Stop stops the server gracefully; calling it again does nothing.
func (n *Ngircd) Stop() {
	if n.proc != nil {
		n.proc.stop()
	}
}

// Kill kills the server with SIGKILL, as in a crash, and waits for it.
func (n *Ngircd) Kill() {
	if n.proc == nil {
		return
	}
	select {
	case <-n.proc.exited:
		return
	default:
	}
	_ = syscall.Kill(-n.proc.cmd.Process.Pid, syscall.SIGKILL)
	<-n.proc.exited
}

// Restart stops the server if it runs and starts it again on the same port,
// with no users and only the predefined channels.
func (n *Ngircd) Restart(t tb.TB) {
	t.Helper()
	n.Stop()
	n.start(t)
}

// Log returns the end of the server's log.
func (n *Ngircd) Log() string { return tail(filepath.Join(n.RunDir, "ngircd.log")) }
