package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/testenv"
)

// TestLeasedRolesOneProcess runs two lode processes with the unlocker and
// payouts roles against one Redis: one process holds each role's lease and
// runs it, and when that process stops the other takes the roles over.
// (No block is pending and no balance is due, so neither role needs the
// node; its address is a closed port.)
func TestLeasedRolesOneProcess(t *testing.T) {
	rs := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(key.PubKey().SerializeCompressed()),
		&chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LODE_TEST_LEASE_NODE_PW", "x")
	cfg := fmt.Sprintf(`roles: [unlocker, payouts]
network: regtest
log: {level: info, format: console}
node: {rpc_address: "127.0.0.1:%d", rpc_user: u, rpc_password: {env: LODE_TEST_LEASE_NODE_PW}}
redis: {address: %s, prefix: lt, lease_ttl: 1s}
pool: {payout_address: %s}
unlocker: {interval: 200ms}
payouts: {interval: 1h, signing: cold}
shutdown_timeout: 10s
`, testenv.FreePort(t), rs.Addr, addr.EncodeAddress())
	path := filepath.Join(t.TempDir(), "lode.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	type proc struct {
		cancel context.CancelFunc
		done   chan int
		log    *syncBuffer
	}
	start := func() *proc {
		ctx, cancel := context.WithCancel(context.Background())
		p := &proc{cancel: cancel, done: make(chan int, 1), log: &syncBuffer{}}
		go func() { p.done <- run(ctx, []string{"-config", path}, nil, io.Discard, p.log) }()
		t.Cleanup(func() {
			cancel()
			<-p.done
			if t.Failed() {
				t.Logf("lode log:\n%s", p.log.String())
			}
		})
		return p
	}
	// acquired counts how often a process took role's lease.
	acquired := func(p *proc, role string) int {
		n := 0
		for _, line := range strings.Split(p.log.String(), "\n") {
			if strings.Contains(line, "lease acquired") && strings.Contains(line, `"role": "`+role+`"`) {
				n++
			}
		}
		return n
	}
	e := &daemonEnv{}
	ctx := context.Background()
	holder := func(role string) string { return rdb.Get(ctx, "lt:lease:"+role).Val() }

	a := start()
	e.waitFor(t, "process a to hold both leases", 20*time.Second, func() bool {
		return acquired(a, "unlocker") == 1 && acquired(a, "payouts") == 1
	})
	b := start()
	e.waitFor(t, "process b to stand by", 20*time.Second, func() bool {
		return strings.Count(b.log.String(), "held by another process") == 2
	})
	// Two lease TTLs: a's leases would have expired had a not renewed
	// them, and b retried several times meanwhile without ever holding.
	ua, pa := holder("unlocker"), holder("payouts")
	time.Sleep(2 * time.Second)
	if acquired(b, "unlocker")+acquired(b, "payouts") != 0 {
		t.Fatal("process b took a lease that a holds")
	}
	if holder("unlocker") != ua || holder("payouts") != pa || ua == "" || pa == "" {
		t.Fatal("the lease holders changed while a was running")
	}
	a.cancel()
	if code := <-a.done; code != 0 {
		t.Fatalf("process a exit %d", code)
	}
	a.done <- 0 // for the cleanup
	e.waitFor(t, "process b to take both roles over", 20*time.Second, func() bool {
		return acquired(b, "unlocker") == 1 && acquired(b, "payouts") == 1
	})
	if holder("unlocker") == ua || holder("payouts") == pa {
		t.Fatal("b runs the roles but a's tokens hold the leases")
	}
}
