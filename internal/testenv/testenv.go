package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// RepoRoot returns the repository root (the folder holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary finds an executable in the repository's bin/ folder or in PATH. The
// fix is printed when it is missing.
func Binary(t testing.TB, name, fix string) string {
	t.Helper()
	local := filepath.Join(RepoRoot(), "bin", name)
	if st, err := os.Stat(local); err == nil && !st.IsDir() {
		return local
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("testenv: %s not found in %s or PATH; %s", name, filepath.Join(RepoRoot(), "bin"), fix)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that this process has not handed out before. It draws from below the
// kernel's ephemeral range, so the outgoing connections of tests running at
// the same time (which take ephemeral ports) cannot grab it before the
// server binds it; servers started by testenv retry on new ports when
// another test process took theirs anyway.
func FreePort(t testing.TB) int {
	t.Helper()
	low, high := 10000, ephemeralLow()
	if high-low < 1000 {
		low = 1024
	}
	for range 1000 {
		p := low + rand.IntN(high-low)
		portsMu.Lock()
		_, taken := portsGiven[p]
		portsMu.Unlock()
		if taken {
			continue
		}
		l, err := net.Listen("tcp", addr(p))
		if err != nil {
			continue
		}
		l.Close()
		portsMu.Lock()
		portsGiven[p] = struct{}{}
		portsMu.Unlock()
		return p
	}
	t.Fatal("testenv: no free port found")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]struct{}{}
)

// ephemeralLow is the start of the kernel's ephemeral port range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 10000 {
		return 32768
	}
	return lo
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
