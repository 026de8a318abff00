//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// TestFrontendsOnRedisCluster is issue 14's frontends test: three stratum
// frontends (the built lode binary, each its own instance id, port and
// spool), one process with the unlocker and payouts roles and one API
// process, all against a real Redis Cluster (3 masters + 3 replicas,
// min_replicas_acked 1) and a regtest btcd. Miners are spread over the
// frontends, each with the other frontends as failover URLs. On regtest every
// share is a block, so every frontend finds blocks. One frontend is SIGKILLed
// under load; its miners move to the next URL. Then the Redis master holding
// the accounting slot is SIGKILLed and a replica promoted. Afterwards: every share a
// miner saw accepted is in the ledger (none counted twice), blocks found at
// every frontend are recorded and credited once (Σ balances + fees = Σ
// rewards credited), and the API process shows the whole pool.
func TestFrontendsOnRedisCluster(t *testing.T) {
	lb := buildLode(t)
	node := testenv.StartBtcd(t)
	node.Generate(1)
	c := testenv.StartRedisCluster(t, 3, 1)
	dir := t.TempDir()
	const diff = 0.00002
	redisExtra := fmt.Sprintf(", mode: cluster, addrs: [%s], min_replicas_acked: 1", strings.Join(c.Addrs(), ", "))
	common := regtestNodeYAML(t, node, c.Nodes[0].Addr, "fe", redisExtra)
	lb.env = append(lb.env, "LODE_TEST_NODE_PASSWORD="+node.Pass)
	write := func(name, body string) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	var procs []*lodeProc
	t.Cleanup(func() {
		for _, p := range procs {
			if !p.exited() {
				p.kill(t)
			}
		}
	})
	ports := make([]string, 3)
	frontends := make([]*lodeProc, 3)
	configs := make([]string, 3)
	for i := range frontends {
		ports[i] = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		path := write(fmt.Sprintf("fe%d", i+1), fmt.Sprintf(`roles: [stratum]
`+common+`pool: {payout_address: %s, instance_id: %d, pplns_min_window: 1000000}
stratum:
  ports:
    - {listen: "%s", start_difficulty: %v, min_difficulty: %v, max_difficulty: %v}
ledger: {spool_dir: %s}
shutdown_timeout: 20s
`, node.Address.EncodeAddress(), i+1, ports[i], diff, diff, diff, filepath.Join(dir, fmt.Sprintf("spool%d", i+1))))
		configs[i] = path
		frontends[i] = lb.start(t, path, ports[i])
		procs = append(procs, frontends[i])
	}
	backoffice := lb.start(t, write("backoffice", `roles: [unlocker, payouts]
`+common+`pool: {payout_address: `+node.Address.EncodeAddress()+`, pplns_min_window: 1000000}
unlocker: {interval: 200ms, maturity: 2}
payouts: {interval: 1h, signing: cold}
shutdown_timeout: 10s
`), "")
	procs = append(procs, backoffice)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	apiProc := lb.start(t, write("api", `roles: [api]
`+common+`pool: {payout_address: `+node.Address.EncodeAddress()+`}
api: {listen: "`+apiAddr+`", rate_limit: -1}
shutdown_timeout: 10s
`), apiAddr)
	procs = append(procs, apiProc)

	// Two miners per frontend, each listing the other frontends next.
	var miners []*moneyMiner
	for i := range ports {
		urls := append(append([]string{}, ports[i:]...), ports[:i]...)
		for j, addr := range []string{minerA, minerB} {
			miners = append(miners, newFailoverMiner(urls, fmt.Sprintf("%s.fe%dm%d", addr, i+1, j), diff, 300*time.Millisecond))
		}
	}
	stopMining := startMiners(miners...)
	defer stopMining()
	accepted := func(from []*moneyMiner) int64 {
		var n int64
		for _, m := range from {
			a, _, _, _ := m.snapshot()
			n += a
		}
		return n
	}
	atFrontend := func(i int) []*moneyMiner { return miners[2*i : 2*i+2] }
	for i := range ports {
		waitUntil(t, fmt.Sprintf("shares accepted at frontend %d", i+1), 60*time.Second, func() bool {
			return accepted(atFrontend(i)) >= 5
		})
	}
	// Statistics are written once per ledger.stats_interval (1 s): the
	// kill may take those of the shares frontend 2 made durable in its last
	// interval, never their credit. The kill comes a few intervals after a
	// snapshot, so the shares accepted in between bound that loss.
	snap := accepted(atFrontend(1))
	time.Sleep(3 * time.Second)
	frontends[1].kill(t)
	before := accepted(atFrontend(1))
	statsMayLose := before - snap
	waitUntil(t, "frontend 2's miners mining at another frontend", 60*time.Second, func() bool {
		return accepted(atFrontend(1)) >= before+5
	})
	// The operator restarts it: its journal's blocks (found, maybe recorded
	// only in part when it died) are recorded and its spool replays.
	frontends[1] = lb.start(t, configs[1], ports[1])
	procs = append(procs, frontends[1])

	// The Redis master holding the accounting slot is SIGKILLed under load:
	// the frontends spool (miners keep hearing true), blocks found meanwhile
	// wait in the journals, a replica is promoted; the old master returns as
	// its replica (min_replicas_acked 1 needs one) and the spools replay.
	const acctKey = "fe:{acct}:window"
	old := c.KillMasterFor(acctKey)
	before = accepted(miners)
	waitUntil(t, "shares accepted while the accounting master is down", 60*time.Second, func() bool {
		return accepted(miners) >= before+5
	})
	c.WaitPromotion(acctKey, old)
	old.Restart()
	c.WaitHealthy()
	before = accepted(miners)
	waitUntil(t, "shares accepted after the failover", 60*time.Second, func() bool {
		return accepted(miners) >= before+5
	})
	stopMining()
	lb.mu.Lock()
	spooled := strings.Contains(lb.logs.String(), "spooling")
	lb.mu.Unlock()
	if !spooled {
		t.Error("no frontend spooled while the accounting master was down: the failover was not exercised")
	}
	for _, i := range []int{0, 2} {
		spool := filepath.Join(dir, fmt.Sprintf("spool%d", i+1), "shares.spool")
		waitUntil(t, fmt.Sprintf("frontend %d's spool replayed", i+1), 60*time.Second, func() bool {
			fi, err := os.Stat(spool)
			return err != nil || fi.Size() == 0
		})
	}

	store, err := redisstore.Connect(context.Background(), redisstore.ConnectConfig{Mode: redisstore.ModeCluster,
		Addrs: c.Addrs(), Prefix: "fe"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Client().Close() })
	bg := context.Background()

	// Every accepted share is in the window once (nothing is trimmed: the
	// window floor is far above what the test mines).
	acceptedAll, doubtAll := checkWindowHolds(t, store, miners)

	// Blocks: found at every frontend (finder names the frontend), each
	// recorded once; once matured, credited once.
	// Records and credits trail the mining (a record is taken once the
	// finding share is durable and a node has the block, by the restarted
	// frontend for the blocks in its journal): wait until every block of
	// the main chain the pool mined (heights 2 to the tip before the three
	// blocks generated here, mature with maturity 2) is recorded and
	// credited, and every recorded block is final with its window root.
	tip, err := node.Client().GetBlockCount()
	if err != nil {
		t.Fatal(err)
	}
	node.Generate(3)
	var blocks []payouts.Block
	waitUntil(t, "every pool block of the main chain credited, every recorded block final with its root", 90*time.Second, func() bool {
		for h := int64(2); h <= tip; h++ {
			hash, err := node.Client().GetBlockHash(h)
			if err != nil {
				return false
			}
			if b, err := store.Block(bg, *hash); err != nil || b.Status != payouts.StatusCredited {
				return false
			}
		}
		blocks, err = store.Blocks(bg, 0)
		if err != nil || len(blocks) == 0 {
			return false
		}
		for _, b := range blocks {
			if b.Status != payouts.StatusCredited && b.Status != payouts.StatusOrphaned || b.WindowRoot == nil {
				return false
			}
		}
		return true
	})
	finders := map[string]int{}
	hashes := map[string]bool{}
	var rewards int64
	for _, b := range blocks {
		if hashes[b.Hash.String()] {
			t.Errorf("block %s recorded twice", b.Hash)
		}
		hashes[b.Hash.String()] = true
		for i := range ports {
			if strings.Contains(b.Finder, fmt.Sprintf(".fe%dm", i+1)) {
				finders[fmt.Sprintf("fe%d", i+1)]++
			}
		}
		if b.Status == payouts.StatusCredited {
			rewards += b.Reward
		}
		// The PPLNS audit: the archived window matches the record's root,
		// total and bounds and, once credited, the credits are exactly its
		// split (payouts.VerifyWindow).
		var leaves []window.Leaf
		if err := store.WindowLeaves(bg, b.Hash, func(l window.Leaf) error { leaves = append(leaves, l); return nil }); err != nil {
			t.Fatal(err)
		}
		var credits map[string]int64
		if b.Status == payouts.StatusCredited {
			if credits, err = store.BlockCredits(bg, b.Hash); err != nil {
				t.Fatal(err)
			}
		}
		if err := payouts.VerifyWindow(b, leaves, credits); err != nil {
			t.Errorf("block %s (%s): %v", b.Hash, b.Status, err)
		}
	}
	t.Logf("%d blocks, by the frontend whose miner found them: %v", len(blocks), finders)
	for i := range ports {
		if finders[fmt.Sprintf("fe%d", i+1)] == 0 {
			t.Errorf("no block found through frontend %d's miners", i+1)
		}
	}
	bal, err := store.Balances(bg)
	if err != nil {
		t.Fatal(err)
	}
	fee, err := store.FeeBalance(bg)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, v := range bal {
		sum += v
	}
	if sum+fee != rewards || rewards == 0 {
		t.Errorf("Σ balances %d + fees %d ≠ Σ rewards credited %d", sum, fee, rewards)
	}

	// The API process (no stratum role) shows the whole pool: every share
	// and every worker, whichever frontend took them (its worker list is
	// cached for 10 s, so poll), less the statistics the frontend kill may
	// have taken.
	var pool struct {
		SharesAccepted int64 `json:"shares_accepted"`
		Workers        int   `json:"workers"`
	}
	waitUntil(t, "the API process to show every worker", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + apiAddr + "/api/v1/pool")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&pool) != nil {
			return false
		}
		return pool.Workers == len(miners) && pool.SharesAccepted >= acceptedAll-statsMayLose
	})
	if pool.SharesAccepted > acceptedAll+doubtAll {
		t.Errorf("API shows %d shares; miners saw %d accepted (+%d in doubt)", pool.SharesAccepted, acceptedAll, doubtAll)
	}
	t.Logf("API shows %d shares; miners saw %d accepted (+%d in doubt); the frontend kill could take the statistics of %d",
		pool.SharesAccepted, acceptedAll, doubtAll, statsMayLose)
}

// checkWindowHolds checks that every share the miners saw accepted is in
// the PPLNS window once: per address, the window's Σ units are at least
// what was accepted and at most that plus the shares in doubt (a cut
// connection: recorded or not). It returns the totals.
func checkWindowHolds(t *testing.T, store *redisstore.Store, miners []*moneyMiner) (acceptedAll, doubtAll int64) {
	t.Helper()
	inWindow := windowUnits(t, store)
	seen := map[string][2]*big.Int{}
	for _, m := range miners {
		acc, units, doubt, doubtUnits := m.snapshot()
		acceptedAll += acc
		doubtAll += doubt
		t.Logf("%v", m)
		addr, _, _ := strings.Cut(m.cfg.Username, ".")
		if seen[addr][0] == nil {
			seen[addr] = [2]*big.Int{new(big.Int), new(big.Int)}
		}
		seen[addr][0].Add(seen[addr][0], units)
		seen[addr][1].Add(seen[addr][1], doubtUnits)
	}
	for addr, v := range seen {
		got := inWindow[addr]
		if got == nil {
			got = new(big.Int)
		}
		if hi := new(big.Int).Add(v[0], v[1]); got.Cmp(v[0]) < 0 || got.Cmp(hi) > 0 {
			t.Errorf("%s: Σ units in the ledger %s, its miners saw %s accepted and %s in doubt", addr, got, v[0], v[1])
		}
	}
	return acceptedAll, doubtAll
}

// TestStratumOnSentinel: a stratum process configured for a Sentinel-managed
// Redis (redis.mode sentinel, min_replicas_acked 1) keeps every accepted
// share through a SIGKILL of the primary: the Sentinels promote a replica,
// the daemon's client follows them, the old primary returns as a replica.
func TestStratumOnSentinel(t *testing.T) {
	lb := buildLode(t)
	node := testenv.StartBtcd(t)
	node.Generate(1)
	sn := testenv.StartRedisSentinel(t, 2)
	dir := t.TempDir()
	const diff = 0.00002
	redisExtra := fmt.Sprintf(", mode: sentinel, addrs: [%s], sentinel_master: %s, min_replicas_acked: 1",
		strings.Join(sn.SentinelAddrs(), ", "), testenv.SentinelMaster)
	lb.env = append(lb.env, "LODE_TEST_NODE_PASSWORD="+node.Pass)
	port := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	path := filepath.Join(dir, "lode.yaml")
	cfg := fmt.Sprintf(`roles: [stratum]
`+regtestNodeYAML(t, node, sn.Servers[0].Addr, "sn", redisExtra)+`pool: {payout_address: %s, pplns_min_window: 1000000}
stratum:
  ports:
    - {listen: "%s", start_difficulty: %v, min_difficulty: %v, max_difficulty: %v}
ledger: {spool_dir: %s}
shutdown_timeout: 20s
`, node.Address.EncodeAddress(), port, diff, diff, diff, filepath.Join(dir, "spool"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := lb.start(t, path, port)
	t.Cleanup(func() {
		if !p.exited() {
			p.kill(t)
		}
	})
	miners := []*moneyMiner{
		newFailoverMiner([]string{port}, minerA+".s1", diff, 200*time.Millisecond),
		newFailoverMiner([]string{port}, minerB+".s2", diff, 200*time.Millisecond),
	}
	stopMining := startMiners(miners...)
	defer stopMining()
	accepted := func() int64 {
		var n int64
		for _, m := range miners {
			a, _, _, _ := m.snapshot()
			n += a
		}
		return n
	}
	more := func(what string) {
		t.Helper()
		target := accepted() + 5
		waitUntil(t, what, 60*time.Second, func() bool { return accepted() >= target })
	}
	more("shares before the failover")
	old := sn.KillPrimary()
	more("shares while the primary is down")
	sn.WaitPromotion(old)
	old.Restart()
	more("shares after the failover")
	stopMining()
	lb.mu.Lock()
	spooled := strings.Contains(lb.logs.String(), "spooling")
	lb.mu.Unlock()
	// Whether a batch met the dead primary depends on timing: go-redis's
	// failover client retries a failed write, and when Sentinel promotes a
	// replica within those retries nothing is spooled. Either way every
	// accepted share must be in the ledger (checkWindowHolds below); the
	// log says which path the run took.
	t.Logf("the stratum process spooled while the primary was down: %v", spooled)
	waitUntil(t, "the spool replayed", 60*time.Second, func() bool {
		fi, err := os.Stat(filepath.Join(dir, "spool", "shares.spool"))
		return err != nil || fi.Size() == 0
	})
	store, err := redisstore.Connect(context.Background(), redisstore.ConnectConfig{Mode: redisstore.ModeSentinel,
		Addrs: sn.SentinelAddrs(), MasterName: testenv.SentinelMaster, Prefix: "sn"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Client().Close() })
	checkWindowHolds(t, store, miners)
}
