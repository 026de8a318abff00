package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Redis is a redis-server child process owned by a test.
type Redis struct {
	Addr string
	Dir  string
	args []string
	bin  string
	cmd  *exec.Cmd
	t    testing.TB
}

// StartRedis starts redis-server on a free loopback port with persistence
// (appendonly, fsync always) in a temporary directory, so a Restart keeps the
// data like a real deployment would. Extra arguments are appended to the
// command line, e.g. "--appendonly", "no".
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin := Binary(t, "redis-server", "install it with `apt-get install -y redis-server` (make test does this)")
	r := &Redis{
		Addr: addr(FreePort(t)),
		Dir:  t.TempDir(),
		bin:  bin,
		t:    t,
	}
	_, port, _ := net.SplitHostPort(r.Addr)
	r.args = append([]string{
		"--port", port, "--bind", "127.0.0.1", "--dir", r.Dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--daemonize", "no", "--logfile", filepath.Join(r.Dir, "redis.log"),
	}, extra...)
	r.start()
	t.Cleanup(r.Stop)
	return r
}

func (r *Redis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("testenv: start redis-server: %v", err)
	}
	if err := waitTCP(r.Addr, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
		r.t.Fatalf("testenv: redis-server on %s did not come up: %v\n%s", r.Addr, err, log)
	}
}

// Stop kills the server (SIGKILL: tests about Redis vanishing want the abrupt
// kind). It is safe to call twice.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_, _ = r.cmd.Process.Wait()
	r.cmd = nil
}

// Restart starts the server again on the same port and directory.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	r.start()
}

// Port returns the TCP port as an int.
func (r *Redis) Port() int {
	_, p, _ := net.SplitHostPort(r.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

func waitTCP(address string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", address, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
