package testserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// EjabberdConfig describes an ejabberd to start.
type EjabberdConfig struct {
	XMPPConfig
	// ComponentListener, when set, returns the YAML of the component
	// listener (one or more items of ejabberd.yml's listen list, indented by
	// two spaces) for the given loopback port, instead of the one generated
	// from Components. The contrib snippet is tested this way.
	ComponentListener func(port int) string
}

// Ejabberd is a running ejabberd on loopback: one Erlang node with a unique
// name, its distribution port on loopback and no epmd, and all of its state
// (config, Mnesia spool, logs) under RunDir.
type Ejabberd struct {
	// Domain is the virtual host the users are on.
	Domain string
	// C2SAddr is the client listener, 127.0.0.1:port, without TLS.
	C2SAddr string
	// ComponentAddr is the ejabberd_service listener, 127.0.0.1:port.
	ComponentAddr string
	// HTTPAddr serves mod_http_api on /api, used to register users.
	HTTPAddr string
	// RunDir holds ejabberd.yml, the Mnesia spool and ejabberd.log.
	RunDir string

	cfgPath string
	argv    []string
	env     []string
	proc    *process
}

// StartEjabberd starts a private ejabberd (Debian's package, started
// directly with erl, so it needs neither root nor the ejabberd user) with the
// given virtual host, components and users; it stops when the test ends.
// The config is the one of StartProsody in ejabberd's terms: no TLS, SASL
// PLAIN allowed, no shapers, no s2s, roster, disco, ping, offline storage
// and last activity.
func StartEjabberd(t tb.TB, cfg EjabberdConfig) *Ejabberd {
	t.Helper()
	libDir := ejabberdLibDir(t)
	if cfg.Domain == "" {
		cfg.Domain = "example.test"
	}
	dir := runDir(t, "ejabberd")
	ports := freePorts(t, 4)
	e := &Ejabberd{
		Domain:        cfg.Domain,
		C2SAddr:       fmt.Sprintf("127.0.0.1:%d", ports[0]),
		ComponentAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		HTTPAddr:      fmt.Sprintf("127.0.0.1:%d", ports[2]),
		RunDir:        dir,
		cfgPath:       filepath.Join(dir, "ejabberd.yml"),
	}
	component := cfg.ComponentListener
	if component == nil {
		component = func(port int) string { return serviceListener(port, cfg.Components) }
	}
	yml := ejabberdYAML(cfg.Domain, ports, component(ports[1]))
	if cfg.Carbons {
		yml += "  mod_carboncopy: {}\n" // modules is the last section
	}
	writeFile(t, e.cfgPath, yml, 0o644)
	// Erlang's resolver reads only this file: the node name's host,
	// localhost, must not depend on the machine's /etc/hosts.
	inetrc := filepath.Join(dir, "inetrc")
	writeFile(t, inetrc, "{lookup,[file,native]}.\n{host,{127,0,0,1},[\"localhost\"]}.\n", 0o644)
	spool := filepath.Join(dir, "spool")
	node := "pt" + randomHex(t, 6) + "@localhost"
	distPort := fmt.Sprint(ports[3])
	e.argv = []string{"erl", "-sname", node, "-setcookie", randomHex(t, 16),
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-erl_epmd_port", distPort, "-start_epmd", "false",
		"-mnesia", "dir", `"` + spool + `"`,
		"-s", "ejabberd", "-noinput", "-ejabberd", "quiet", "true"}
	e.env = []string{
		"EJABBERD_CONFIG_PATH=" + e.cfgPath,
		"EJABBERD_LOG_PATH=" + filepath.Join(dir, "ejabberd.log"),
		"ERL_LIBS=" + libDir,
		"ERL_DIST_PORT=" + distPort,
		"ERL_INETRC=" + inetrc,
		"ERL_CRASH_DUMP_BYTES=0",
		"CONTRIB_MODULES_PATH=" + filepath.Join(dir, "modules"),
		"HOME=" + dir,
	}
	e.start(t)
	// At the end of the test the run dir is removed anyway: a clean stop
	// would cost a second. The Erlang node's helper processes
	// (erl_child_setup, inet_gethost) exit when it does.
	t.Cleanup(func() { e.proc.kill() })
	for _, u := range cfg.Users {
		e.AddUser(t, u.Name, u.Password)
	}
	return e
}

// ejabberdLibDir finds the directory that holds Debian's ejabberd-VERSION
// application, for ERL_LIBS; it skips or fails the test as Require does.
func ejabberdLibDir(t tb.TB) string {
	t.Helper()
	Require(t, "erl", "ejabberd")
	apps, _ := filepath.Glob("/usr/lib/*/ejabberd-*/ebin/ejabberd.app")
	if len(apps) == 0 {
		missing(t, "ejabberd's Erlang application", "ejabberd")
		return ""
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(apps[0])))
}

// serviceListener is the ejabberd_service listener for components. Its
// max_stanza_size is ejabberd's default (none), as the packaged config and
// contrib/ejabberd.yml leave it; never raise a limit to make a test pass.
func serviceListener(port int, components []Component) string {
	var b strings.Builder
	fmt.Fprintf(&b, `  - port: %d
    ip: "127.0.0.1"
    module: ejabberd_service
`, port)
	if len(components) == 0 {
		b.WriteString("    hosts: {}\n")
	} else {
		b.WriteString("    hosts:\n")
	}
	for _, c := range components {
		fmt.Fprintf(&b, "      %q:\n        password: %q\n", c.Domain, c.Secret)
	}
	return b.String()
}

// ejabberdYAML is the server's config: ports are c2s, component, HTTP.
func ejabberdYAML(domain string, ports []int, componentListener string) string {
	return fmt.Sprintf(`hosts:
  - %[1]q
loglevel: info
log_rotate_count: 0
hide_sensitive_log_data: true
auth_method: internal
auth_password_format: plain
s2s_access: none
listen:
  - port: %[2]d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    starttls_required: false
    shaper: none
    backlog: 1024
  - port: %[3]d
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
%[4]s
api_permissions:
  "register over loopback":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.1/8
    what:
      - register
      - unregister
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_offline: {}
  mod_last: {}
  mod_http_api: {}
`, domain, ports[0], ports[2], componentListener)
}

func (e *Ejabberd) start(t tb.TB) {
	t.Helper()
	e.proc = startProcess(t, "ejabberd", filepath.Join(e.RunDir, "ejabberd.out"), e.argv, e.env...)
	for _, addr := range []string{e.C2SAddr, e.ComponentAddr, e.HTTPAddr} {
		if err := e.proc.waitPort(addr, 30*time.Second); err != nil {
			e.proc.stop()
			t.Fatalf("%v\n%s", err, e.Log())
		}
	}
}

// AddUser creates an account through mod_http_api, replacing an existing
// one (and its roster) as Prosody's AddUser replaces the password; it works
// while the server runs.
func (e *Ejabberd) AddUser(t tb.TB, name, password string) {
	t.Helper()
	account := map[string]string{"user": name, "host": e.Domain}
	err := e.api("register", map[string]string{"user": name, "host": e.Domain, "password": password})
	if err != nil && strings.Contains(err.Error(), "already registered") {
		// change_password is in mod_admin_extra, which the tests do not need.
		err = e.api("unregister", account)
		if err == nil {
			err = e.api("register", map[string]string{"user": name, "host": e.Domain, "password": password})
		}
	}
	if err != nil {
		t.Fatalf("ejabberd: add user %s: %v\n%s", name, err, e.Log())
	}
}

var apiClient = &http.Client{Timeout: 10 * time.Second}

// api calls an ejabberd command over mod_http_api.
func (e *Ejabberd) api(command string, args map[string]string) error {
	body, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode %s: %w", command, err)
	}
	resp, err := apiClient.Post("http://"+e.HTTPAddr+"/api/"+command, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", command, resp.Status, answer)
	}
	return nil
}

// Stop stops the server (SIGTERM; it takes about a second) and every process
// it started; calling it again does nothing.
func (e *Ejabberd) Stop() {
	if e.proc != nil {
		e.proc.stop()
	}
}

// Kill kills the server with SIGKILL, as in a crash. Restart starts it
// again.
func (e *Ejabberd) Kill() {
	if e.proc != nil {
		e.proc.kill()
	}
}

// Restart stops the server and starts it again with the same node name,
// ports and data.
func (e *Ejabberd) Restart(t tb.TB) {
	t.Helper()
	e.Stop()
	e.start(t)
}

// Log returns the end of the server's log.
func (e *Ejabberd) Log() string {
	return tail(filepath.Join(e.RunDir, "ejabberd.log")) + "\n" + tail(filepath.Join(e.RunDir, "ejabberd.out"))
}

// Running reports whether the server process is alive.
func (e *Ejabberd) Running() error {
	select {
	case <-e.proc.exited:
		return errNotRunning
	default:
		return nil
	}
}

// randomHex returns n random bytes in hex.
func randomHex(t tb.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
