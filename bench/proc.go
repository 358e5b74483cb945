package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
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
