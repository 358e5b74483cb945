// Package testserver starts real servers (Prosody, ejabberd, ngircd,
// InspIRCd, Dovecot and Postfix) on loopback for tests, each with all of its
// state in a private run directory, and stops them when the test ends.
package testserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// RequireEnv is the environment variable that turns a missing server binary
// from a skipped test into a failed one; the test script sets it.
const RequireEnv = "PASSERELLE_REQUIRE_SERVERS"

// Require skips the test when binary is missing, or fails it when
// PASSERELLE_REQUIRE_SERVERS=1, naming the Debian package to install.
func Require(t tb.TB, binary, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err == nil {
		return path
	}
	missing(t, binary, debianPackage)
	return ""
}

// missing skips the test, or fails it when PASSERELLE_REQUIRE_SERVERS=1,
// saying what is not installed and which Debian package brings it.
func missing(t tb.TB, what, debianPackage string) {
	t.Helper()
	msg := fmt.Sprintf("%s not found: apt-get install %s (or run ./scripts/test.sh)", what, debianPackage)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// runDir makes a short private directory that daemons switching users can
// enter (mktemp's 0700 would lock them out); it is removed after the test.
func runDir(t tb.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pt-"+prefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// freePorts reserves n loopback ports by listening on port 0, then releases
// them for the server to take.
func freePorts(t tb.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// process is a server started in the foreground with its output in a log.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

func startProcess(t tb.TB, name, logPath string, argv []string, env ...string) *process {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	// Pdeathsig: a test binary killed on timeout takes its servers along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p
}

// stop sends SIGTERM to the process group, then SIGKILL if it lingers.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// kill ends the process group at once, for a server whose state is thrown
// away anyway.
func (p *process) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// waitPort waits until addr accepts connections or the process dies.
func (p *process) waitPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on %s:\n%s", p.name, addr, tail(p.logPath))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %v:\n%s", p.name, addr, timeout, tail(p.logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the end of a log file for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func writeFile(t tb.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

var errNotRunning = errors.New("testserver: not running")
