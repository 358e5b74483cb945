package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// writePostfixConfig writes a private main.cf and master.cf: queue, data
// and config under the run dir, no chroot, SMTP on the chosen loopback
// port only, SASL and recipient checks through Dovecot, and delivery of
// Domain into Dovecot over LMTP; every other destination is an error.
func (m *Mail) writePostfixConfig(t tb.TB) {
	t.Helper()
	conf := m.path("postfix")
	data := m.path("postfix-data")
	for _, dir := range []string{data, m.path("postfix-queue")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("postfix user: %v", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	gid, _ := strconv.Atoi(pf.Gid)
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	base := m.dovecotBase()
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
config_directory = %[1]s
queue_directory = %[2]s
data_directory = %[3]s
maillog_file = %[4]s
maillog_file_prefixes = %[5]s
myhostname = smtp.%[6]s
mydomain = %[6]s
myorigin = %[6]s
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtp_dns_support_level = disabled
biff = no
virtual_mailbox_domains = %[6]s
virtual_transport = lmtp:unix:%[7]s/lmtp
default_transport = error:mail to other domains is not delivered in tests
relay_transport = error:mail to other domains is not delivered in tests
smtpd_tls_security_level = may
smtpd_tls_cert_file = %[8]s
smtpd_tls_key_file = %[9]s
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = %[7]s/auth-client
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_restriction_classes = dovecot_user
dovecot_user = check_policy_service unix:%[7]s/quota-status
smtpd_recipient_restrictions = check_recipient_access inline:{%[6]s=dovecot_user}
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_count_limit = 0
`, conf, m.path("postfix-queue"), data, m.path("postfix.log"), m.dir, m.domain, base, m.certFile, m.keyFile)
	writeFile(t, filepath.Join(conf, "main.cf"), mainCF, 0o644)
	masterCF := fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n127.0.0.1:%d inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n", m.smtpPort, m.smtpsPort)
	for _, line := range []string{
		"pickup unix n - n 60 1 pickup",
		"cleanup unix n - n - 0 cleanup",
		"qmgr unix n - n 300 1 qmgr",
		"rewrite unix - - n - - trivial-rewrite",
		"bounce unix - - n - 0 bounce",
		"defer unix - - n - 0 bounce",
		"trace unix - - n - 0 bounce",
		"verify unix - - n - 1 verify",
		"flush unix n - n 1000? 0 flush",
		"proxymap unix - - n - - proxymap",
		"showq unix n - n - - showq",
		"error unix - - n - - error",
		"retry unix - - n - - error",
		"discard unix - - n - - discard",
		"lmtp unix - - n - - lmtp",
		"anvil unix - - n - 1 anvil",
		"scache unix - - n - 1 scache",
		"tlsmgr unix - - n 1000? 1 tlsmgr",
		"postlog unix-dgram n - n - 1 postlogd",
	} {
		masterCF += line + "\n"
	}
	writeFile(t, filepath.Join(conf, "master.cf"), masterCF, 0o644)
	// Postfix waits, 0.3 s at a time, until main.cf is at least a second
	// or two old ("cool down") before it reads it: backdate the files.
	old := time.Now().Add(-time.Minute)
	for _, name := range []string{"main.cf", "master.cf"} {
		if err := os.Chtimes(filepath.Join(conf, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// check creates the queue directories with their owners.
	if out, err := exec.Command("postfix", "-c", conf, "check").CombinedOutput(); err != nil {
		t.Fatalf("postfix check: %v\n%s\n%s", err, out, m.Log())
	}
}

func (m *Mail) startPostfix(t tb.TB) {
	t.Helper()
	p := startProcess(t, "postfix", m.path("postfix.out"),
		[]string{"postfix", "-c", m.path("postfix"), "start-fg"})
	m.mu.Lock()
	m.postfix = p
	m.mu.Unlock()
	if err := p.waitPort(m.SMTPAddr(), 15*time.Second); err != nil {
		m.Stop()
		t.Fatalf("%v\n%s", err, m.Log())
	}
}

// stopPostfix signals the master: start-fg runs it from a shell script,
// in a session (and process group) of its own, so the shell's group is
// the wrong target.
func (m *Mail) stopPostfix() {
	m.mu.Lock()
	p := m.postfix
	m.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	b, _ := os.ReadFile(filepath.Join(m.path("postfix-queue"), "pid", "master.pid"))
	master, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if master > 1 && processState(master) != 0 {
		_ = syscall.Kill(master, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(master, syscall.SIGKILL)
		}
		waitGroupGone(master, 5*time.Second)
	}
	p.stop()
}

// waitGroupGone waits until no live process is left in process group pgid,
// then kills whatever is left; zombies, which PID 1 reaps only after a
// while here, do not count.
func waitGroupGone(pgid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupAlive reports whether a process that is not a zombie is in group pgid.
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		state, group, ok := parseStat(string(b))
		if ok && group == pgid && state != 'Z' {
			return true
		}
	}
	return false
}

// processState is the state letter of pid from /proc, or 0 if it is gone
// or a zombie.
func processState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	state, _, ok := parseStat(string(b))
	if !ok || state == 'Z' {
		return 0
	}
	return state
}

// parseStat takes the state and process group from /proc/PID/stat, whose
// second field, the command in parentheses, may contain spaces.
func parseStat(s string) (state byte, pgid int, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pgid, err := strconv.Atoi(f[2])
	return f[0][0], pgid, err == nil
}
