package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// memory is a process's resident set, from /proc/PID/status, in KiB.
type memory struct {
	RSS  int64 // VmRSS: now
	Peak int64 // VmHWM: the most it ever was
}

// readMemory reads the resident set of a process, the same way for both
// gateways.
func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("memory of %d: %w", pid, err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch key {
		case "VmRSS":
			m.RSS = n
		case "VmHWM":
			m.Peak = n
		}
	}
	if err := sc.Err(); err != nil {
		return memory{}, fmt.Errorf("memory of %d: %w", pid, err)
	}
	if m.RSS == 0 {
		return memory{}, fmt.Errorf("memory of %d: no VmRSS (has it exited?)", pid)
	}
	return m, nil
}

// cpuTime is the CPU time (user + system) a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis (utime and stime are fields 14, 15).
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time of %d: short stat", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// cpuMeter measures the CPU time processes use between two points.
type cpuMeter struct {
	pids  map[string]int
	start map[string]time.Duration
}

func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: map[string]time.Duration{}}
	for name, pid := range pids {
		m.start[name], _ = cpuTime(pid)
	}
	return m
}

// used returns each process's CPU time since newCPUMeter, in ms.
func (m *cpuMeter) used() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range m.pids {
		now, err := cpuTime(pid)
		if err == nil {
			out[name] = ms(now - m.start[name])
		}
	}
	return out
}
