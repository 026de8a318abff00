package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lode-pool/lode/alerts"
	"github.com/lode-pool/lode/economics"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/internal/webhook"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// A process with the api role alone and economics and alerts enabled: the
// engine takes templates from the node (no stratum role, no template
// manager) and fees from its chain, the API and /metrics serve its figures;
// the alerts' admin API issues a token, a miner subscribes a webhook with
// it, and when the miner's worker stops sending shares (recorded in the
// real Redis) both the operator's webhook and the miner's receive
// worker_offline, signed.
func TestEconomicsAndAlertsWired(t *testing.T) {
	node := testenv.StartBtcd(t)
	node.Generate(3)
	rs := testenv.StartRedis(t)
	var mu sync.Mutex
	got := map[string][]alerts.Event{}
	recv := func(name, secret string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			var ev alerts.Event
			if !webhook.VerifySignature(secret, b, r.Header.Get(webhook.SignatureHeader)) || json.Unmarshal(b, &ev) != nil {
				t.Errorf("%s: bad delivery %s", name, b)
			}
			mu.Lock()
			got[name] = append(got[name], ev)
			mu.Unlock()
		}))
		t.Cleanup(s.Close)
		return s
	}
	op, miner := recv("operator", "op-secret"), recv("miner", "miner-secret")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	t.Setenv("LODE_TEST_ADMIN_TOKEN", "admin-secret")
	// The alerts' secrets come from the environment and a file, as lode.yaml
	// names them (never the values in the file).
	t.Setenv("LODE_TEST_ALERTS_TOKENS", "tokens")
	opSecret := filepath.Join(t.TempDir(), "op-secret")
	if err := os.WriteFile(opSecret, []byte("op-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "roles: [api]\n" + regtestNodeYAML(t, node, rs.Addr, "ew", "") + fmt.Sprintf(`api:
  listen: %q
  admin_token: {env: LODE_TEST_ADMIN_TOKEN}
economics:
  enabled: true
  refresh: 200ms
  power: {currency: sat, price: 50}
alerts:
  enabled: true
  interval: 200ms
  worker_offline: 2s
  token_secret: {env: LODE_TEST_ALERTS_TOKENS}
  allow_private_targets: true
  delivery: {initial_backoff: 10ms}
  webhook: {url: %q, secret: {file: %q}, initial_backoff: 10ms}
`, apiAddr, op.URL, opSecret)
	path := filepath.Join(t.TempDir(), "lode.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	log := &syncBuffer{}
	go func() { done <- run(ctx, []string{"-config", path}, nil, io.Discard, log) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 || t.Failed() {
			t.Logf("exit %d; lode log:\n%s", code, log.String())
		}
	}()
	e := &daemonEnv{api: "http://" + apiAddr}
	e.waitFor(t, "API up", 60*time.Second, func() bool {
		res, err := http.Get(e.api + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	})
	var o economics.Overview
	e.waitFor(t, "economics figures", 60*time.Second, func() bool {
		return e.get(t, "/api/v1/economics", &o) == 200 && o.Network.Trailing != nil
	})
	if o.Network.Height != node.Height()+1 || o.Network.Hashprice[economics.BasisTemplate].SatPerTHDay <= 0 ||
		o.Network.Trailing.Blocks == 0 || o.Prices.SatPerKWh == nil || *o.Prices.SatPerKWh != 50 {
		t.Errorf("overview %+v", o)
	}
	res, err := http.Get(e.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, m := range []string{"lode_economics_hashprice_sat_per_th_day{basis=\"template\"}", "lode_alerts_subscriptions"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}

	// Token from the admin API, subscription with it.
	const addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, tb := post("/api/v1/admin/alerts/tokens", "admin-secret", `{"address":"`+addr+`"}`)
	var tok struct{ Token string }
	if code != 200 || json.Unmarshal([]byte(tb), &tok) != nil {
		t.Fatalf("token: %d %s", code, tb)
	}
	if code, b := post("/api/v1/alerts/subscriptions", tok.Token, `{"address":"`+addr+`","kind":"webhook","url":"`+miner.URL+
		`","secret":"miner-secret"}`); code != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", code, b)
	}

	// The worker's last share, 1 s ahead: online for the monitor's first
	// looks, offline 2 s after it.
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: rs.Addr, Prefix: "ew"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Client().Close()
	sh := shares.Share{Worker: addr + ".rig", Address: addr, WorkerName: "rig", Difficulty: 1, HashDifficulty: 1, Time: time.Now().Add(time.Second)}
	if err := store.ApplyBatch(ctx, &ledger.Batch{Instance: "t", Seq: 2, Shares: []ledger.Entry{{Seq: 1, Units: "1", Share: sh}}}, "0"); err != nil {
		t.Fatal(err)
	}
	offline := func(name string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, ev := range got[name] {
				if ev.Type == alerts.WorkerOffline && ev.Worker == addr+".rig" && ev.Address == addr {
					return true
				}
			}
			return false
		}
	}
	e.waitFor(t, "worker_offline at the operator", 30*time.Second, offline("operator"))
	e.waitFor(t, "worker_offline at the miner", 30*time.Second, offline("miner"))
}
