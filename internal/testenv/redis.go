package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server child process owned by a test.
type Redis struct {
	Addr   string
	Dir    string
	args   []string
	bin    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	t      testing.TB
	// ready is the log line that says the server is up (default: a
	// redis-server's "Ready to accept connections"; a Sentinel logs its ID).
	ready string
}

// StartRedis starts redis-server on a free loopback port with persistence
// (appendonly, fsync always) in a temporary directory, so a Restart keeps the
// data like a real deployment would. Extra arguments are appended to the
// command line, e.g. "--appendonly", "no".
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin := Binary(t, "redis-server", "install it with `apt-get install -y redis-server` (make test does this)")
	r := &Redis{
		Dir: t.TempDir(),
		bin: bin,
		t:   t,
	}
	// A port found free can be taken by another test process before
	// redis-server binds it; then it exits at once and starts on a new port.
	for attempt := 1; ; attempt++ {
		r.Addr = addr(FreePort(t))
		_, port, _ := net.SplitHostPort(r.Addr)
		r.args = append([]string{
			"--port", port, "--bind", "127.0.0.1", "--dir", r.Dir,
			"--save", "", "--appendonly", "yes", "--appendfsync", "always",
			"--daemonize", "no", "--logfile", filepath.Join(r.Dir, "redis.log"),
		}, extra...)
		err := r.start()
		if err == nil {
			break
		}
		r.Stop()
		if attempt == 3 {
			t.Fatalf("testenv: %v", err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

// start runs redis-server and waits until it logs that it accepts
// connections: a bare TCP dial could reach another server that holds the
// port.
func (r *Redis) start() error {
	logPath := filepath.Join(r.Dir, "redis.log")
	_ = os.Remove(logPath)
	r.cmd = exec.Command(r.bin, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	// A test binary killed by its -timeout runs no cleanup: the kernel then
	// kills the server, which would otherwise keep its port and memory.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	r.exited = exited
	cmd := r.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, _ := os.ReadFile(logPath)
		ready := r.ready
		if ready == "" {
			ready = "Ready to accept connections"
		}
		if bytes.Contains(log, []byte(ready)) {
			if err := waitTCP(r.Addr, 5*time.Second); err != nil {
				return fmt.Errorf("redis-server on %s: %w", r.Addr, err)
			}
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited at start:\n%s", r.Addr, log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not come up:\n%s", r.Addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: tests about Redis vanishing want the abrupt
// kind). It is safe to call twice.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// Pause stops the server with SIGSTOP, as a stalled host would: it keeps its
// connections and data but answers nothing, reads no replication stream and
// acknowledges nothing (a replica that lags). Resume continues it; Stop
// (SIGKILL) ends a paused server too.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a server stopped by Pause (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	if r.cmd == nil || r.cmd.Process == nil {
		r.t.Fatalf("testenv: %v to redis-server on %s: not running", sig, r.Addr)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("testenv: %v to redis-server on %s: %v", sig, r.Addr, err)
	}
}

// Restart starts the server again on the same port and directory.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatalf("testenv: restart: %v", err)
	}
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
