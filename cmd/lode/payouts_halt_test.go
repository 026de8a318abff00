package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
)

// TestDaemonPayoutsHaltAlert runs a payouts+api process whose first payout
// the node refuses (btcd: its input was spent in the mempool outside Lode;
// Core: its -minrelaytxfee is above the payout's fee rate): /readyz fails
// with the node's reason, /metrics says payouts are halted and counts the
// refusals, the public payments list says why, and new balances are not
// debited however many runs go by.
func TestDaemonPayoutsHaltAlert(t *testing.T) {
	for _, kind := range testenv.NodeKinds {
		t.Run(kind, func(t *testing.T) { testDaemonPayoutsHaltAlert(t, kind) })
	}
}

func testDaemonPayoutsHaltAlert(t *testing.T, kind string) {
	var node testenv.Node
	why := "already spent"
	if kind == testenv.KindCore {
		node, why = testenv.StartNode(t, kind, "-minrelaytxfee=0.0002"), "min relay fee not met" // 20 sat/vB
	} else {
		node = testenv.StartNode(t, kind)
	}
	rds := testenv.StartRedis(t)
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: rds.Addr, Prefix: "halt"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	blk, err := node.Client().GetBlock(node.Generate(1)[0])
	if err != nil {
		t.Fatal(err)
	}
	cb := blk.Transactions[0]
	op := wire.OutPoint{Hash: cb.TxHash()}
	node.Generate(testenv.CoinbaseMaturity)
	addr := func(i byte) string {
		seed := sha256.Sum256([]byte{'d', i})
		a, _ := btcutil.NewAddressWitnessPubKeyHash(seed[:20], node.Chain())
		return a.EncodeAddress()
	}
	c := s.Client()
	c.HSet(ctx, s.UTXOsKey(), op.String(), cb.TxOut[0].Value)
	c.HSet(ctx, s.BalancesKey(), addr(1), 20_000_000)
	c.Set(ctx, s.FeeBalanceKey(), cb.TxOut[0].Value-20_000_000, 0)
	if kind == testenv.KindBtcd {
		// btcd's gettxout does not see mempool spends: the payout is built
		// from the coinbase and then refused.
		script, _ := txscript.PayToAddrScript(node.MiningAddress())
		thief := wire.NewMsgTx(2)
		thief.AddTxIn(wire.NewTxIn(&op, nil, nil))
		thief.AddTxOut(wire.NewTxOut(cb.TxOut[0].Value-100_000, script))
		sig, err := txscript.SignatureScript(thief, 0, script, txscript.SigHashAll, node.TestKey(), true)
		if err != nil {
			t.Fatal(err)
		}
		thief.TxIn[0].SignatureScript = sig
		if _, err := node.Client().SendRawTransaction(thief, false); err != nil {
			t.Fatal(err)
		}
	}

	wif, _ := btcutil.NewWIF(node.TestKey(), node.Chain(), true)
	t.Setenv("LODE_TEST_HALT_KEY", wif.String())
	user, pass, cookie := node.RPCAuth()
	auth := "  rpc_cookie_file: " + cookie + "\n"
	if cookie == "" {
		t.Setenv("LODE_TEST_HALT_NODE_PASSWORD", pass)
		auth = "  rpc_user: " + user + "\n  rpc_password: {env: LODE_TEST_HALT_NODE_PASSWORD}\n"
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := fmt.Sprintf(`roles: [payouts, api]
network: regtest
log: {level: info, format: console}
node:
  rpc_address: %s
%sredis: {address: %s, prefix: halt}
pool: {payout_address: %s}
payouts:
  interval: 200ms
  threshold: 10000
  signing: hot
  key: {env: LODE_TEST_HALT_KEY}
api: {listen: %q}
`, strings.TrimPrefix(node.RPCURL(), "http://"), auth, rds.Addr, node.MiningAddress().EncodeAddress(), apiAddr)
	path := filepath.Join(t.TempDir(), "lode.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	log := &syncBuffer{}
	go func() { done <- run(runCtx, []string{"-config", path}, nil, io.Discard, log) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d", code)
		}
		if t.Failed() {
			t.Logf("lode log:\n%s", log.String())
		}
	}()
	e := &daemonEnv{api: "http://" + apiAddr}

	// /readyz: the payouts check fails with the node's reason.
	var ready struct {
		Ready  bool
		Checks []struct {
			Name, Error string
			OK          bool
		}
	}
	e.waitFor(t, "readyz to report the refused payout", 60*time.Second, func() bool {
		res, err := http.Get(e.api + "/readyz")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		ready.Checks = nil
		if res.StatusCode != 503 || json.Unmarshal(body, &ready) != nil {
			return false
		}
		for _, c := range ready.Checks {
			if c.Name == "payouts" && !c.OK && strings.Contains(c.Error, why) {
				return true
			}
		}
		return false
	})

	// New balances while halted: several runs later, still not debited.
	c.HSet(ctx, s.BalancesKey(), addr(2), 30_000_000)
	c.DecrBy(ctx, s.FeeBalanceKey(), 30_000_000)
	refused := regexp.MustCompile(`lode_payout_broadcast_failures_total\{reason="refused"\} (\d+)`)
	var metrics string
	e.waitFor(t, "three more refused broadcasts", 60*time.Second, func() bool {
		res, err := http.Get(e.api + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		metrics = string(body)
		m := refused.FindStringSubmatch(metrics)
		n := 0
		if m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		return n >= 4
	})
	if !strings.Contains(metrics, "lode_payouts_halted 1\n") || !strings.Contains(metrics, "lode_payouts_awaiting_broadcast 1\n") {
		t.Errorf("metrics while halted:\n%s", metrics)
	}
	if bal, err := s.Balances(ctx); err != nil || bal[addr(2)] != 30_000_000 {
		t.Errorf("balance of the new address while halted: %v, %v", bal, err)
	}
	if tot, err := s.Totals(ctx); err != nil || tot.Payouts != 1 {
		t.Errorf("payouts committed while halted: %+v, %v", tot, err)
	}
	var pays struct{ Payments []api.Payment }
	if code := e.get(t, "/api/v1/payments", &pays); code != 200 || len(pays.Payments) != 1 ||
		!strings.HasPrefix(pays.Payments[0].BroadcastError, "refused by the node: ") || !strings.Contains(pays.Payments[0].BroadcastError, why) {
		t.Errorf("payments: %d %+v", code, pays)
	}
}
