package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
)

// TestPayoutsDryRunFromConfig: with -config lode.yaml, lodectl finds Redis,
// the prefix, the network, the node and the payout settings in the daemon's
// file (payouts.threshold here, not lodectl's own default), and a flag
// still overrides the file.
func TestPayoutsDryRunFromConfig(t *testing.T) {
	node := testenv.StartBtcd(t)
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "ctlcfg"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	for _, h := range node.Generate(2) {
		blk, err := node.Client().GetBlock(h)
		if err != nil {
			t.Fatal(err)
		}
		cb := blk.Transactions[0]
		s.Client().HSet(ctx, s.UTXOsKey(), wire.OutPoint{Hash: cb.TxHash(), Index: 0}.String(), cb.TxOut[0].Value)
	}
	node.Generate(testenv.CoinbaseMaturity)
	for i := 0; i < 3; i++ {
		seed := sha256.Sum256([]byte(fmt.Sprintf("lodectl config recipient %d", i)))
		a, _ := btcutil.NewAddressWitnessPubKeyHash(seed[:20], node.Chain())
		s.Client().HSet(ctx, s.BalancesKey(), a.EncodeAddress(), int64(10_000_000*(i+1)))
	}
	s.Client().Set(ctx, s.FeeBalanceKey(), 1_000_000, 0)

	dir := t.TempDir()
	user, pass, _ := node.RPCAuth()
	pwFile := filepath.Join(dir, "rpc-password")
	if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lode.yaml")
	text := `network: regtest
node: {rpc_address: "` + strings.TrimPrefix(node.RPCURL(), "http://") + `", rpc_user: ` + user + `, rpc_password: {file: ` + pwFile + `}}
redis: {address: "` + srv.Addr + `", prefix: ctlcfg}
pool: {payout_address: ` + node.MiningAddress().EncodeAddress() + `, pplns_min_window: 1}
stratum: {ports: [{listen: "127.0.0.1:0", start_difficulty: 1, min_difficulty: 1, max_difficulty: 1}]}
payouts: {threshold: 15000000, signing: cold}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file's threshold (0.15 BTC): the 0.2 and 0.3 balances are due.
	out, errs, code := runCtl(t, "payouts", "run", "-dry-run", "-config", path)
	if code != 0 || !strings.Contains(out, "would pay 0.50000000 BTC to 2 addresses") {
		t.Fatalf("dry run from the file: %d\n%s\n%s", code, out, errs)
	}
	// A flag overrides the file.
	out, errs, code = runCtl(t, "payouts", "run", "-dry-run", "-config", path, "-threshold", "25000000")
	if code != 0 || !strings.Contains(out, "would pay 0.30000000 BTC to 1 addresses") {
		t.Fatalf("dry run with -threshold: %d\n%s\n%s", code, out, errs)
	}
	// Every accounting command reads the file too.
	out, errs, code = runCtl(t, "balances", "-config", path)
	if code != 0 || !strings.Contains(out, "(total, 3 addresses)") {
		t.Fatalf("balances: %d\n%s\n%s", code, out, errs)
	}
	// $LODE_CONFIG names the file when -config is not given.
	t.Setenv("LODE_CONFIG", path)
	if out, errs, code = runCtl(t, "blocks"); code != 0 || !strings.Contains(out, "no blocks found yet") {
		t.Fatalf("blocks with LODE_CONFIG: %d\n%s\n%s", code, out, errs)
	}
}

func TestConfigErrorsAndUnreachableRedis(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("roles: [api]\nredis: {adress: 127.0.0.1:6379}\napi: {listen: '0.0.0.0:99999'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCtl(t, "balances", "-config", bad)
	if code != 1 || !strings.Contains(errs, "redis.adress: unknown key (did you mean `address`?)") ||
		!strings.Contains(errs, `api.listen: port must be a number from 0 to 65535, got "99999"`) {
		t.Fatalf("bad config: %d\n%s", code, errs)
	}
	// Nothing listens on a port of a Redis that was stopped: one clear line.
	srv := testenv.StartRedis(t)
	addr := srv.Addr
	srv.Stop()
	_, errs, code = runCtl(t, "blocks", "-redis", addr)
	if code != 1 || strings.Count(strings.TrimSpace(errs), "\n") != 0 ||
		!strings.Contains(errs, "lodectl blocks: cannot reach Redis at "+addr+" (redis.address, default; set -config lode.yaml or -redis)") {
		t.Fatalf("unreachable Redis: %d\n%q", code, errs)
	}
}

// A local Redis on a Unix socket (redis.address: unix:///path) is reached
// through it, the pre-check included.
func TestRedisUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "redis.sock")
	srv := testenv.StartRedis(t, "--unixsocket", sock, "--unixsocketperm", "700")
	_ = srv
	path := filepath.Join(t.TempDir(), "lode.yaml")
	if err := os.WriteFile(path, []byte("roles: [api]\nredis: {address: 'unix://"+sock+"', prefix: sock}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCtl(t, "balances", "-config", path)
	if code != 0 || !strings.Contains(out, "(total, 0 addresses)") {
		t.Fatalf("balances over the socket: %d\n%s\n%s", code, out, errs)
	}
}
