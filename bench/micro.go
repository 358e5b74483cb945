package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"passerelle.dev/passerelle/internal/tb"
)

// MicroResult is one Go micro-benchmark of a hot path.
type MicroResult struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

// microPackages hold the hot-path benchmarks: address encode/decode,
// registry lookup, message → IRC lines and IRC line → event.
var microPackages = []string{"./transports/address/", "./registry/", "./transports/irc/"}

// runMicro runs the packages' benchmarks with go test -bench -benchmem.
func runMicro(t tb.TB, e *env, benchtime string) []MicroResult {
	t.Helper()
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime, "-count", "1"}, microPackages...)
	cmd := exec.Command("go", args...)
	cmd.Dir = e.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return parseBench(out.String())
}

// parseBench reads the lines "BenchmarkX-2  100  123 ns/op  45 B/op  6 allocs/op".
func parseBench(out string) []MicroResult {
	var res []MicroResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "pkg: "); ok {
			pkg = p[strings.LastIndexByte(p, '/')+1:] + "."
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		r := MicroResult{Name: pkg + name}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				r.NsPerOp = v
			case "B/op":
				r.BytesPerOp = v
			case "allocs/op":
				r.AllocsPerOp = v
			}
		}
		res = append(res, r)
	}
	return res
}

func (m MicroResult) String() string {
	return fmt.Sprintf("%s: %.0f ns/op, %.0f B/op, %.0f allocs/op", m.Name, m.NsPerOp, m.BytesPerOp, m.AllocsPerOp)
}
