package load

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcSample is a process's resident memory and CPU time, read from /proc
// (Linux only).
type ProcSample struct {
	RSS     int64         // VmRSS in bytes
	CPU     time.Duration // user + system time
	Threads int
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// ReadProc samples process pid.
func ReadProc(pid int) (ProcSample, error) {
	var s ProcSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read process status: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		switch k {
		case "VmRSS":
			if len(fields) >= 1 {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				if err != nil {
					return s, fmt.Errorf("parse VmRSS %q: %w", v, err)
				}
				s.RSS = kb << 10
			}
		case "Threads":
			if len(fields) >= 1 {
				s.Threads, _ = strconv.Atoi(fields[0])
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read process stat: %w", err)
	}
	// The command name is in parentheses and may hold spaces: fields
	// count from after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After ')': state(3) ... utime is field 14, stime 15 (1-based overall).
	if len(f) < 13 {
		return s, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("parse /proc/%d/stat cpu times %q %q", pid, f[11], f[12])
	}
	s.CPU = time.Duration(ut+st) * clockTick
	return s, nil
}
