//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
)

// TestStratumStartsWithRedisDown starts a stratum+api process while Redis
// is down: it starts anyway, miners get their shares accepted (durable in
// the spool), /readyz says Redis is missing, and once Redis comes up the
// spool is replayed into it.
func TestStratumStartsWithRedisDown(t *testing.T) {
	node := testenv.StartBtcd(t)
	node.Generate(1)
	rs := testenv.StartRedis(t)
	rs.Stop() // down before lode starts; Restart brings it up on the same port
	dir := t.TempDir()
	stratumAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := fmt.Sprintf(`roles: [stratum, api]
`+regtestNodeYAML(t, node, rs.Addr, "rd", "")+`pool: {payout_address: %s, pplns_min_window: 100}
stratum:
  ports:
    - {listen: "%s", start_difficulty: 0.0001, min_difficulty: 0.000001, max_difficulty: 1}
ledger: {spool_dir: %s}
api: {listen: "%s"}
shutdown_timeout: 20s
`, node.Address.EncodeAddress(), stratumAddr, filepath.Join(dir, "spool"), apiAddr)
	path := filepath.Join(dir, "lode.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int, 1)
	log := &syncBuffer{}
	go func() { done <- run(ctx, []string{"-config", path}, nil, io.Discard, log) }()
	defer func() {
		if t.Failed() {
			t.Logf("lode log:\n%s", log.String())
		}
	}()
	e := &daemonEnv{api: "http://" + apiAddr}
	e.waitFor(t, "API up", 30*time.Second, func() bool {
		select {
		case code := <-done:
			t.Fatalf("lode exited with %d while Redis was down", code)
		default:
		}
		res, err := http.Get(e.api + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	if !strings.Contains(log.String(), "redis unreachable at start") {
		t.Error("no log line about Redis being unreachable")
	}
	if ok, found := redisReady(t, e.api); !found || ok {
		t.Errorf("/readyz redis check: found %v ok %v while Redis is down", found, ok)
	}

	m, err := miner.Dial(ctx, miner.Config{Address: stratumAddr, Username: node.Address.EncodeAddress() + ".rig", Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Run(ctx, 3)
	m.Close()
	// Every share here is also a regtest block, so a share mined on the old
	// job before the new one arrives is stale (21), as at any tip change; any
	// other rejection is a failure (a CI run at 11:33 had one stale share).
	if err != nil || st.Accepted != 3 || st.Rejected != st.ByCode[int(shares.CodeJobNotFound)] {
		t.Fatalf("mining with Redis down: %+v %v", st, err)
	}
	metrics := func() string {
		res, err := http.Get(e.api + "/metrics")
		if err != nil {
			return ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if mt := metrics(); !strings.Contains(mt, "lode_ledger_spool_bytes") || strings.Contains(mt, "lode_ledger_spool_bytes 0\n") {
		t.Errorf("spool empty after accepting shares with Redis down")
	}

	rs.Restart()
	var pool api.PoolResponse
	e.waitFor(t, "the spooled shares in Redis", time.Minute, func() bool {
		return e.get(t, "/api/v1/pool", &pool) == 200 && pool.SharesAccepted >= 3
	})
	e.waitFor(t, "the spool drained", 30*time.Second, func() bool {
		return strings.Contains(metrics(), "lode_ledger_spool_bytes 0\n")
	})
	if ok, _ := redisReady(t, e.api); !ok {
		t.Error("/readyz redis check fails after Redis came back")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// redisReady returns the redis check of /readyz (whatever the status code).
func redisReady(t *testing.T, base string) (ok, found bool) {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ready struct {
		Checks []struct {
			Name string
			OK   bool
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&ready); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	for _, c := range ready.Checks {
		if c.Name == "redis" {
			return c.OK, true
		}
	}
	return false, false
}
