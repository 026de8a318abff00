//go:build e2e

package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/internal/testenv"
)

// TestMakeRunSmoke runs scripts/run-local.sh (what `make run` executes) with
// freshly built binaries and its own state directory, waits until the API
// reports accepted shares and a found block, stops it with SIGINT like
// Ctrl-C, and checks that it stopped cleanly and left nothing running: its
// process group is empty and every port it printed is closed.
func TestMakeRunSmoke(t *testing.T) {
	root := testenv.RepoRoot()
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/lode", "./cmd/lodectl", "./cmd/lode-bench")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, name := range []string{"btcd", "btcctl"} {
		src := testenv.Binary(t, name, "run `make deps` (it installs btcd and btcctl into ./bin)")
		if err := os.Symlink(src, filepath.Join(binDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Binary(t, "redis-server", "install it with `apt-get install -y redis-server` (make deps does this)")

	cmd := exec.Command("bash", filepath.Join(root, "scripts", "run-local.sh"))
	cmd.Dir = root
	state := t.TempDir()
	cmd.Env = append(os.Environ(), "LODE_RUN_BIN="+binDir, "LODE_RUN_STATE="+state)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	lines := make(chan string, 256)
	var output strings.Builder
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	found := make(chan string, 4)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("run-local.sh output:\n%s", output.String())
		}
	})
	go func() {
		for l := range lines {
			output.WriteString(l + "\n")
			if m := urlLine.FindStringSubmatch(l); m != nil {
				found <- m[1] + " " + m[2]
			}
			if m := lodectlLine.FindStringSubmatch(l); m != nil {
				found <- "lodectl " + m[1]
			}
		}
		exited <- cmd.Wait()
	}()

	// The script prints its URLs once everything is up.
	urls := map[string]string{}
	deadline := time.After(3 * time.Minute)
	for len(urls) < 3 {
		select {
		case l := <-found:
			kind, u, _ := strings.Cut(l, " ")
			urls[kind] = u
		case err := <-exited:
			stopped = true
			t.Fatalf("run-local.sh exited early: %v", err)
		case <-deadline:
			t.Fatal("run-local.sh printed no URLs within 3 minutes")
		}
	}
	dash := strings.TrimSuffix(urls["dashboard"], "/")
	stratumURL, err := url.Parse(urls["stratum"])
	if err != nil {
		t.Fatal(err)
	}

	var pool api.PoolResponse
	limit := time.Now().Add(3 * time.Minute)
	for {
		if res, err := http.Get(dash + "/api/v1/pool"); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && jsonUnmarshal(body, &pool) == nil && pool.SharesAccepted > 0 && pool.LastBlock != nil {
				break
			}
		}
		if time.Now().After(limit) {
			t.Fatalf("no accepted shares and found block within 3 minutes; last pool stats %+v", pool)
		}
		time.Sleep(500 * time.Millisecond)
	}
	res, err := http.Get(dash + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), "<title>Lode pool</title>") {
		t.Error("the dashboard URL does not serve the dashboard")
	}

	// The printed lodectl line works as pasted (from the repository root),
	// and so do the README's lines against the config make run wrote.
	ctl := strings.Fields(urls["lodectl"])
	if len(ctl) < 4 || ctl[0] != filepath.Join(binDir, "lodectl") || ctl[len(ctl)-1] != filepath.Join(state, "lode.yaml") {
		t.Fatalf("lodectl line %q: want %s/lodectl … -config %s/lode.yaml", urls["lodectl"], binDir, state)
	}
	runCtl := func(args ...string) string {
		c := exec.Command(ctl[0], args...)
		c.Dir = root
		out, err := c.CombinedOutput()
		if err != nil {
			t.Errorf("lodectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := runCtl(ctl[1:]...); !strings.Contains(out, "(pool fee account)") {
		t.Errorf("printed lodectl line: %s", out)
	}
	cfgPath := ctl[len(ctl)-1]
	for _, args := range readmeLodectlLines(t, root) {
		args = append([]string(nil), args...)
		for i, a := range args {
			if a == "run/lode.yaml" {
				args[i] = cfgPath // the test's own state directory instead of ./run
			}
		}
		if out := runCtl(args...); strings.Contains(out, "cannot reach") {
			t.Errorf("README line lodectl %s: %s", strings.Join(args, " "), out)
		}
	}

	// Ctrl-C: the terminal sends SIGINT to the script's process group.
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("run-local.sh exit: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("run-local.sh did not stop within 90 s of SIGINT")
	}
	if !strings.Contains(output.String(), "run-local: stopped") {
		t.Error("no clean stop message")
	}
	// Nothing it started is left: no process in its group (bounded wait for
	// orphaned helpers such as a sleep to end), no listener on its ports.
	gone := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(gone) {
			out, _ := exec.Command("ps", "-o", "pid,args", "-g", strconv.Itoa(pgid)).CombinedOutput()
			t.Fatalf("processes of run-local.sh still running:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, hostport := range []string{stratumURL.Host, strings.TrimPrefix(dash, "http://")} {
		if c, err := net.DialTimeout("tcp", hostport, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after stop", hostport)
		}
	}
}

// urlLine matches the URL lines run-local.sh prints when everything is up,
// lodectlLine its ready-to-paste lodectl line.
var (
	urlLine     = regexp.MustCompile(`^\s+(stratum|dashboard)\s+(\S+)`)
	lodectlLine = regexp.MustCompile(`^\s+lodectl\s+(\S+lodectl .*-config \S+)\s*$`)
)

// readmeLodectlLines returns the arguments of the README's
// "./bin/lodectl … -config run/lode.yaml" lines (share-check, which reads
// stdin, aside).
func readmeLodectlLines(t *testing.T, root string) [][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "./bin/lodectl ") || !strings.Contains(l, "-config run/lode.yaml") {
			continue
		}
		code, _, _ := strings.Cut(l, "#")
		out = append(out, strings.Fields(code)[1:])
	}
	if len(out) < 4 {
		t.Fatalf("README has %d lodectl lines with -config run/lode.yaml, want at least 4", len(out))
	}
	return out
}
