package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for the daemon's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemonEnv is a real lode process (in-process run) against a real Redis
// and a real btcd regtest node.
type daemonEnv struct {
	node    *testenv.Btcd
	redis   *testenv.Redis
	api     string // http://127.0.0.1:port
	stratum string // 127.0.0.1:port
	cfgPath string
	cancel  context.CancelFunc
	done    chan int
	hup     chan os.Signal
	log     *syncBuffer
}

// startDaemon writes a regtest config (all roles, hot payouts with the
// testenv key, low difficulty) and runs lode with it.
func startDaemon(t *testing.T) *daemonEnv {
	t.Helper()
	e := &daemonEnv{node: testenv.StartBtcd(t), redis: testenv.StartRedis(t), log: &syncBuffer{}}
	e.node.Generate(1) // btcd serves templates once it has a block past genesis
	dir := t.TempDir()
	e.stratum = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.api = "http://" + apiAddr
	wif, err := btcutil.NewWIF(e.node.Key, e.node.Params, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LODE_TEST_PAYOUT_KEY", wif.String())
	t.Setenv("LODE_TEST_ADMIN_TOKEN", "admin-secret")
	cfg := fmt.Sprintf(`
`+regtestNodeYAML(t, e.node, e.redis.Addr, "e2e", "")+`pool:
  payout_address: %s
  fee_percent: 1
  pplns_min_window: 100
stratum:
  ports:
    - {listen: "%s", start_difficulty: 0.0001, min_difficulty: 0.000001, max_difficulty: 1}
  share_interval: 1s
  retarget_interval: 5s
ledger: {spool_dir: %s}
unlocker: {interval: 500ms, maturity: 100}
payouts:
  interval: 1s
  threshold: 10000
  signing: hot
  key: {env: LODE_TEST_PAYOUT_KEY}
  fee_payer: miners
api:
  listen: "%s"
  admin_token: {env: LODE_TEST_ADMIN_TOKEN}
  history_interval: 1s
shutdown_timeout: 20s
`, e.node.Address.EncodeAddress(), e.stratum,
		filepath.Join(dir, "spool"), apiAddr)
	e.cfgPath = filepath.Join(dir, "lode.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done, e.hup = cancel, make(chan int, 1), make(chan os.Signal, 1)
	go func() { e.done <- run(ctx, []string{"-config", e.cfgPath}, e.hup, io.Discard, e.log) }()
	t.Cleanup(func() {
		e.stop(t)
		if t.Failed() {
			t.Logf("lode log:\n%s", e.log.String())
		}
	})
	e.waitFor(t, "API up", 30*time.Second, func() bool {
		res, err := http.Get(e.api + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return e
}

// stop cancels the daemon and returns its exit code (once).
func (e *daemonEnv) stop(t *testing.T) int {
	t.Helper()
	if e.cancel == nil {
		return 0
	}
	e.cancel()
	e.cancel = nil
	select {
	case code := <-e.done:
		return code
	case <-time.After(40 * time.Second):
		t.Fatal("lode did not stop within 40 s of cancel")
		return -1
	}
}

// waitFor polls cond until it holds or the limit passes (a bounded wait,
// not a timing assertion: the limit only stops a broken run).
func (e *daemonEnv) waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, limit, what, cond)
}

func (e *daemonEnv) get(t *testing.T, path string, v any) int {
	t.Helper()
	res, err := http.Get(e.api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if v != nil && res.StatusCode == 200 {
		if err := jsonUnmarshal(body, v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	return res.StatusCode
}

// TestDaemonEndToEnd runs the whole pool: two test miners (one rolling
// version bits) mine through lode on regtest; shares are recorded, blocks
// found and accepted by btcd, matured by the chain the pool itself extends,
// credited by the unlocker and paid by the payout processor; the API and
// /metrics report it; cancel stops everything cleanly.
func TestDaemonEndToEnd(t *testing.T) {
	e := startDaemon(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for _, mc := range []miner.Config{
		{Address: e.stratum, Username: minerA + ".rig1", Password: "x"},
		{Address: e.stratum, Username: minerB, Password: "x", VersionRolling: true},
	} {
		m, err := miner.Dial(ctx, mc)
		if err != nil {
			t.Fatalf("dial %s: %v", mc.Username, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.Close()
			_, _ = m.Run(ctx, 0)
		}()
	}

	var pool api.PoolResponse
	e.waitFor(t, "accepted shares and a found block", 3*time.Minute, func() bool {
		return e.get(t, "/api/v1/pool", &pool) == 200 && pool.SharesAccepted > 0 && pool.LastBlock != nil
	})
	// The worker list is cached for a few seconds.
	e.waitFor(t, "both miners listed", 30*time.Second, func() bool {
		return e.get(t, "/api/v1/pool", &pool) == 200 && pool.Miners == 2 && pool.Workers == 2
	})
	if pool.Network.Height < 2 || pool.Hashrate.TenMinutes <= 0 {
		t.Errorf("pool %+v", pool)
	}
	// Every share on regtest is a block: the pool's own blocks bury its first
	// ones; 100 more from the node make sure they mature.
	e.node.Generate(100)
	var blocks struct{ Blocks []api.Block }
	e.waitFor(t, "a credited block", 2*time.Minute, func() bool {
		if e.get(t, "/api/v1/blocks?limit=1000", &blocks) != 200 {
			return false
		}
		for _, b := range blocks.Blocks {
			if b.Status == api.BlockCredited {
				return true
			}
		}
		return false
	})
	var payments struct{ Payments []api.Payment }
	e.waitFor(t, "a payout", 2*time.Minute, func() bool {
		return e.get(t, "/api/v1/payments", &payments) == 200 && len(payments.Payments) > 0
	})
	var m api.Miner
	if code := e.get(t, "/api/v1/miners/"+payments.Payments[0].Address, &m); code != 200 || m.Paid == 0 {
		t.Errorf("miner %s after payout: status %d %+v", payments.Payments[0].Address, code, m)
	}

	res, err := http.Get(e.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"lode_stratum_connections 2", "lode_shares_accepted_total", `lode_block_candidates_total{result="accepted"}`,
		"lode_template_age_seconds", "lode_ledger_batch_seconds_count", "lode_job_fanout_seconds_count",
		"lode_submit_seconds_count"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code := e.get(t, "/readyz", nil); code != 200 {
		t.Errorf("/readyz %d", code)
	}

	// Admin: ban miner B's worker (its connection closes), then unban it.
	admin := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, e.api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer admin-secret")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := admin("/api/v1/admin/ban", `{"target":"`+minerB+`","duration":"1h"}`); code != 200 {
		t.Fatalf("ban: %d", code)
	}
	e.waitFor(t, "the banned miner disconnected", 30*time.Second, func() bool {
		res, err := http.Get(e.api + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return strings.Contains(string(b), `lode_stratum_disconnects_total{reason="banned"} 1`) &&
			strings.Contains(string(b), "lode_stratum_connections 1")
	})
	if code := admin("/api/v1/admin/unban", `{"target":"`+minerB+`"}`); code != 200 {
		t.Fatalf("unban: %d", code)
	}

	// SIGHUP with a changed file reloads the stratum settings.
	orig, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.cfgPath, []byte(strings.Replace(string(orig), "share_interval: 1s", "share_interval: 2s", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.hup <- syscall.SIGHUP
	e.waitFor(t, "the reload logged", 10*time.Second, func() bool {
		return strings.Contains(e.log.String(), "SIGHUP: reloaded")
	})

	// SIGHUP with a broken file keeps the running config and the pool.
	if err := os.WriteFile(e.cfgPath, []byte("stratum: {ports: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.hup <- syscall.SIGHUP
	e.waitFor(t, "the rejected reload logged", 10*time.Second, func() bool {
		return strings.Contains(e.log.String(), "SIGHUP: config not reloaded")
	})
	if code := e.get(t, "/healthz", nil); code != 200 {
		t.Errorf("after a bad SIGHUP: /healthz %d", code)
	}

	cancel()
	wg.Wait()
	if code := e.stop(t); code != 0 {
		t.Fatalf("lode exited with %d", code)
	}
	if !strings.Contains(e.log.String(), "lode stopped") {
		t.Error("no clean stop in the log")
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestAPIRoleAlone runs a process with only the api role (the shape of a
// dashboard frontend next to separate stratum processes): it needs Redis
// only, serves the readers, and reports no stratum metrics.
func TestAPIRoleAlone(t *testing.T) {
	redis := testenv.StartRedis(t)
	dir := t.TempDir()
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	path := filepath.Join(dir, "lode.yaml")
	cfg := fmt.Sprintf("roles: [api]\nnetwork: regtest\nredis: {address: %s}\napi: {listen: %q}\nlog: {format: console}\n", redis.Addr, apiAddr)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	log := &syncBuffer{}
	go func() { done <- run(ctx, []string{"-config", path}, nil, io.Discard, log) }()
	e := &daemonEnv{api: "http://" + apiAddr}
	e.waitFor(t, "API up", 30*time.Second, func() bool {
		res, err := http.Get(e.api + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	})
	var pool api.PoolResponse
	if code := e.get(t, "/api/v1/pool", &pool); code != 200 || pool.SharesAccepted != 0 || pool.Network.Height != 0 {
		t.Errorf("pool: %d %+v", code, pool)
	}
	var ready struct {
		Ready  bool
		Checks []struct{ Name string }
	}
	if code := e.get(t, "/readyz", &ready); code != 200 || len(ready.Checks) != 1 || ready.Checks[0].Name != "redis" {
		t.Errorf("readyz: %d %+v", code, ready)
	}
	res, err := http.Get(e.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(body), "lode_stratum_connections") || !strings.Contains(string(body), "lode_shares_accepted_total") {
		t.Errorf("metrics of an api-only process:\n%s", body)
	}
	// The admin ban needs the stratum role.
	req, _ := http.NewRequest(http.MethodPost, e.api+"/api/v1/admin/ban", strings.NewReader(`{"target":"1.2.3.4"}`))
	req.Header.Set("Authorization", "Bearer x")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		if res.StatusCode != 403 {
			t.Errorf("ban without a configured token: %d", res.StatusCode)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d\n%s", code, log.String())
	}
}

// regtestNodeYAML is the head of every daemon test's config: regtest,
// console logs, the test btcd (its RPC password through the environment) and
// the test Redis under prefix; redisExtra adds keys to the redis map (e.g.
// ", lease_ttl: 1s"). The result goes into a format string, so it holds no
// '%'.
func regtestNodeYAML(t *testing.T, node *testenv.Btcd, redisAddr, prefix, redisExtra string) string {
	t.Helper()
	t.Setenv("LODE_TEST_NODE_PASSWORD", node.Pass)
	return fmt.Sprintf(`network: regtest
log: {level: info, format: console}
node:
  rpc_address: %s
  rpc_user: %s
  rpc_password: {env: LODE_TEST_NODE_PASSWORD}
  poll_interval: 200ms
redis: {address: %s, prefix: %s%s}
`, node.RPCAddr, node.User, redisAddr, prefix, redisExtra)
}
