// Command bench measures Passerelle side by side with biboumi, the
// reference XMPP-IRC gateway: latency, throughput, memory per bridged user
// and start-up, against a real Prosody and a real ngircd on loopback. Both
// gateways are components of the same Prosody and bridge to the same
// ngircd; each scenario alternates between them. It prints a Markdown table
// and writes the figures as JSON.
//
// Usage (from the module's root):
//
//	go run ./bench -out bench/results.json [-quick] [-gateways passerelle,biboumi]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"passerelle.dev/passerelle/internal/tb"
)

// options say what to measure and how much.
type options struct {
	quick     bool
	gateways  []string
	scenarios map[string]bool
	// counts
	latencyMessages int
	latencyBlocks   int
	burst           int
	scaleUsers      []int
	channelSize     int
	startupUsers    int
	startupRuns     int
	benchtime       string
	// profileDir, if set, gets pprof profiles of Passerelle.
	profileDir string
}

// Results is everything one run measured.
type Results struct {
	Date     string   `json:"date"`
	Machine  Machine  `json:"machine"`
	Quick    bool     `json:"quick"`
	Gateways []string `json:"gateways"`
	// Biboumi says whether biboumi ran, or why not.
	Biboumi    string             `json:"biboumi"`
	Relaxed    []string           `json:"relaxed"`
	Latency    []LatencyResult    `json:"latency,omitempty"`
	Throughput []ThroughputResult `json:"throughput,omitempty"`
	Scale      []ScaleResult      `json:"scale,omitempty"`
	Startup    []StartupResult    `json:"startup,omitempty"`
	Micro      []MicroResult      `json:"micro,omitempty"`
	Table      []row              `json:"table"`
	Notes      []string           `json:"notes,omitempty"`
	// Failed lists the scenarios that did not complete.
	Failed  []string `json:"failed,omitempty"`
	Seconds float64  `json:"seconds"`
}

// Machine describes where the figures come from.
type Machine struct {
	Host    string   `json:"host"`
	Cores   int      `json:"cores"`
	CPU     string   `json:"cpu"`
	Kernel  string   `json:"kernel"`
	Go      string   `json:"go"`
	Servers []string `json:"servers"`
}

func main() {
	out := flag.String("out", "bench/results.json", "write the results as JSON to `file`")
	md := flag.String("markdown", "", "also write the table as Markdown to `file`")
	quick := flag.Bool("quick", false, "a smoke run: every count shrunk")
	gws := flag.String("gateways", "passerelle,biboumi", "comma-separated gateways to measure")
	scen := flag.String("scenarios", "latency,throughput,scale,startup,micro", "comma-separated scenarios to run")
	profile := flag.String("profile", "", "build Passerelle with -tags pprof and save CPU and heap profiles to `dir`")
	channelSize := flag.Int("channel-size", 10, "users per channel in the scale scenario (0: all in one channel, n² presences)")
	scaleCounts := flag.String("users", "", "comma-separated user counts for the scale scenario (default 1,100,1000; -quick 1,10)")
	flag.Parse()
	opts := newOptions(*quick, strings.Split(*gws, ","), strings.Split(*scen, ","))
	if *scaleCounts != "" {
		opts.scaleUsers = nil
		for _, f := range strings.Split(*scaleCounts, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "bench: -users: %q is not a count\n", f)
				os.Exit(2)
			}
			opts.scaleUsers = append(opts.scaleUsers, n)
		}
	}
	opts.profileDir = *profile
	opts.channelSize = *channelSize
	p := &tb.Program{}
	res := run(p, opts)
	p.Close()
	var b strings.Builder
	writeMarkdown(&b, res)
	fmt.Print(b.String())
	if *md != "" {
		if err := os.WriteFile(*md, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if err := writeJSON(*out, res); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if len(res.Failed) > 0 {
		fmt.Fprintln(os.Stderr, "bench: failed scenarios:", strings.Join(res.Failed, ", "))
		os.Exit(1)
	}
}

func newOptions(quick bool, gateways, scenarios []string) options {
	o := options{
		quick: quick, gateways: gateways, scenarios: map[string]bool{},
		latencyMessages: 1000, latencyBlocks: 4, burst: 5000,
		scaleUsers: []int{1, 100, 1000}, startupUsers: 10000, startupRuns: 3,
		benchtime: "1s",
	}
	if quick {
		o.latencyMessages, o.latencyBlocks, o.burst = 50, 2, 500
		o.scaleUsers, o.startupUsers, o.startupRuns = []int{1, 10}, 1000, 1
		o.benchtime = "100x"
	}
	for _, s := range scenarios {
		o.scenarios[strings.TrimSpace(s)] = true
	}
	return o
}

func writeJSON(path string, res *Results) error {
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// run sets up the servers and runs each scenario in turn; a scenario that
// fails is reported and the others still run.
func run(p *tb.Program, o options) *Results {
	begin := time.Now()
	res := &Results{Date: begin.UTC().Format("2006-01-02 15:04 MST"), Machine: machine(), Quick: o.quick}
	var e *env
	var gws []gateway
	step := func(name string, f func()) {
		done := false
		p.Run(func() { f(); done = true })
		if !done {
			res.Failed = append(res.Failed, name)
		}
	}
	step("setup", func() {
		accounts := []string{"probe", "pair-passerelle", "pair-biboumi"}
		for i := range maxOf(o.scaleUsers) {
			accounts = append(accounts, userName(i))
		}
		e = newEnv(p, accounts)
		if o.profileDir != "" {
			if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
				p.Fatal(err)
			}
			e.prof = profiler{dir: o.profileDir, addr: pprofAddr}
		}
		res.Relaxed = []string{ngircdRelaxed}
		res.Notes = append(res.Notes, prosodyTuned+".")
		for _, name := range o.gateways {
			switch strings.TrimSpace(name) {
			case "passerelle":
				pg := newPasserelle(p, e)
				gws = append(gws, pg)
				res.Relaxed = append(res.Relaxed, pg.Relaxed())
			case "biboumi":
				if reason := biboumiMissing(); reason != "" {
					res.Biboumi = "did not run: " + reason
					res.Notes = append(res.Notes, "biboumi "+res.Biboumi+"; Passerelle measured alone.")
					continue
				}
				bg := &biboumiGW{e: e}
				gws = append(gws, bg)
				res.Relaxed = append(res.Relaxed, bg.Relaxed())
				res.Biboumi = "ran (" + packageVersion("biboumi") + ")"
			}
		}
		for _, g := range gws {
			res.Gateways = append(res.Gateways, g.Name())
		}
	})
	if e == nil || len(gws) == 0 {
		res.Seconds = time.Since(begin).Seconds()
		return res
	}
	if o.scenarios["latency"] || o.scenarios["throughput"] {
		var pairs []*pair
		step("pairs", func() {
			for _, g := range gws {
				g.Start(p, g.Prepare(p, []string{"pair-" + g.Name() + "@" + xmppDomain}))
				e.waitOnline(p, g.Domain(), g.Started(), 30*time.Second)
				pairs = append(pairs, newPair(p, e, g))
			}
		})
		if len(pairs) == len(gws) {
			if o.scenarios["latency"] {
				step("latency", func() { res.Latency = runLatency(p, pairs, o.latencyMessages, o.latencyBlocks) })
			}
			if o.scenarios["throughput"] {
				step("throughput", func() { res.Throughput = runThroughput(p, e, pairs, o.burst) })
			}
		}
		for _, g := range gws {
			g.Stop()
		}
	}
	if o.scenarios["scale"] {
		step("scale", func() {
			users := scaleUsers(p, e, maxOf(o.scaleUsers))
			res.Scale = runScale(p, e, gws, o.scaleUsers, o.channelSize, users)
		})
	}
	if o.scenarios["startup"] {
		step("startup", func() { res.Startup = runStartup(p, e, gws, o.startupUsers, o.startupRuns) })
	}
	if o.scenarios["micro"] {
		step("micro", func() { res.Micro = runMicro(p, e, o.benchtime) })
	}
	res.Table = buildTable(res).rows
	res.Seconds = time.Since(begin).Seconds()
	return res
}

func maxOf(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// biboumiMissing says why biboumi cannot run here, or "".
func biboumiMissing() string {
	if _, err := exec.LookPath("biboumi"); err != nil {
		return "biboumi is not installed (apt-get install biboumi, or run ./scripts/bench.sh)"
	}
	if _, err := exec.LookPath("sqlite3"); err != nil {
		return "sqlite3 is not installed (apt-get install sqlite3), needed to write biboumi's per-user options"
	}
	return ""
}

// machine describes this machine and the servers' versions.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	m.Host, _ = os.Hostname()
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	for _, pkg := range []string{"prosody", "ngircd"} {
		m.Servers = append(m.Servers, pkg+" "+packageVersion(pkg))
	}
	return m
}

// packageVersion is the installed Debian package's version.
func packageVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil || len(out) == 0 {
		return "(version unknown)"
	}
	return string(out)
}
