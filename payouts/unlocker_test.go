package payouts_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// The daemon's node client is the unlocker's Chain.
var _ payouts.Chain = (*bitcoind.Client)(nil)

// nodeClient returns the real node adapter (the daemon's) for a node at
// url, with a user and password or Core's cookie file.
func nodeClient(url, user, pass, cookie string) (*bitcoind.Client, error) {
	return bitcoind.New(bitcoind.Config{URL: url, User: user, Password: pass, CookieFile: cookie}, nil)
}

// forEachNode runs fn as a subtest for every node kind (btcd, Bitcoin
// Core). Each test starts its own node: they count confirmations from
// their own blocks, reorganise and expect regtest's first-era 50 BTC
// subsidy, which one node shared by the package would not keep.
func forEachNode(t *testing.T, fn func(t *testing.T, nodeKind string)) {
	for _, kind := range testenv.NodeKinds {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// env is a real redis-server and regtest node (btcd or Bitcoin Core) with a
// pool ledger on top.
type env struct {
	t     *testing.T
	redis *testenv.Redis
	chain testenv.Node
	store *redisstore.Store
	// ledgerChain is the unlocker's view of the node: the daemon's client.
	ledgerChain payouts.Chain
	script      []byte // the pool's payout script: the node's mining address
	seq         uint64
}

const testPrefix = "lodetest"

func newEnv(t *testing.T, nodeKind string) *env {
	t.Helper()
	e := &env{t: t, redis: testenv.StartRedis(t), chain: testenv.StartNode(t, nodeKind)}
	e.store = e.newStore()
	user, pass, cookie := e.chain.RPCAuth()
	c, err := nodeClient(e.chain.RPCURL(), user, pass, cookie)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e.ledgerChain = c
	script, err := txscript.PayToAddrScript(e.chain.MiningAddress())
	if err != nil {
		t.Fatal(err)
	}
	e.script = script
	return e
}

func (e *env) newStore() *redisstore.Store {
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	e.t.Cleanup(func() { rdb.Close() })
	return redisstore.New(rdb, redisstore.Config{Prefix: testPrefix})
}

// recordShares writes accepted shares (address, difficulty) through the
// share ledger's store, as the pool does.
func (e *env) recordShares(shareList ...any) {
	e.t.Helper()
	b := &ledger.Batch{Instance: "test"}
	for i := 0; i < len(shareList); i += 2 {
		addr, diff := shareList[i].(string), shareList[i+1].(float64)
		u, err := ledger.DiffUnits(diff)
		if err != nil {
			e.t.Fatal(err)
		}
		e.seq++
		b.Shares = append(b.Shares, ledger.Entry{Seq: e.seq, Units: u, Share: shares.Share{
			Worker: addr + ".rig", Address: addr, WorkerName: "rig", Difficulty: diff, Time: time.Now()}})
	}
	e.seq++
	b.Seq = e.seq
	if err := e.store.ApplyBatch(context.Background(), b, "0"); err != nil {
		e.t.Fatal(err)
	}
}

// mineFound mines one block paying the pool and records it as found.
func (e *env) mineFound() payouts.Block {
	e.t.Helper()
	hash := e.chain.Generate(1)[0]
	blk, err := e.chain.Client().GetBlock(hash)
	if err != nil {
		e.t.Fatal(err)
	}
	fb, err := payouts.NewFoundBlock(blk, e.chain.Height(), "A.rig", e.script)
	if err != nil {
		e.t.Fatal(err)
	}
	if fb.Hash != *hash || fb.CoinbaseOutpoint != (wire.OutPoint{Hash: blk.Transactions[0].TxHash(), Index: 0}) ||
		fb.CoinbaseValue != blk.Transactions[0].TxOut[0].Value || fb.NetworkDifficulty <= 0 {
		e.t.Fatalf("NewFoundBlock = %+v", fb)
	}
	// A window far above every share these tests record: each block is
	// split over all of them. (Regtest's 2 × difficulty is 0 units.)
	rec, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: e.store, MinWindow: 1e9, Logger: zaptest.NewLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := rec.BlockFound(context.Background(), fb)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) unlocker(maturity int64) *payouts.Unlocker {
	e.t.Helper()
	u, err := payouts.NewUnlocker(payouts.UnlockerConfig{
		Ledger: e.store, Chain: e.ledgerChain, PayoutScript: e.script, FeeBasisPoints: 100,
		Maturity: maturity, Logger: zaptest.NewLogger(e.t),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) step(u *payouts.Unlocker) payouts.StepResult {
	e.t.Helper()
	res, err := u.Step(context.Background())
	if err != nil {
		e.t.Fatalf("Step: %v", err)
	}
	return res
}

func (e *env) status(h chainhash.Hash) payouts.BlockStatus {
	e.t.Helper()
	b, err := e.store.Block(context.Background(), h)
	if err != nil {
		e.t.Fatal(err)
	}
	return b.Status
}

func (e *env) balances() map[string]int64 {
	e.t.Helper()
	m, err := e.store.Balances(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) fees() int64 {
	e.t.Helper()
	f, err := e.store.FeeBalance(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func (e *env) invalidate(h chainhash.Hash) {
	e.t.Helper()
	e.chain.InvalidateBlock(h)
}

// replaceTip waits for the clock to move past the tip's timestamp so that a
// block mined after an invalidateblock differs from the invalidated one
// (btcd would otherwise rebuild the identical block), then mines n blocks.
func (e *env) mineReplacement(n uint32) {
	e.t.Helper()
	time.Sleep(1100 * time.Millisecond)
	e.chain.Generate(n)
}

// TestUnlockerLifecycle: a pool block with a two-miner snapshot is pending,
// immature, and after 100 more blocks credited with exactly the satoshis the
// snapshot implies; further steps change nothing.
func TestUnlockerLifecycle(t *testing.T) { forEachNode(t, testUnlockerLifecycle) }

func testUnlockerLifecycle(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind)
	// A: 3 difficulty in two shares, B: 1. Regtest height 1 pays 50 BTC.
	e.recordShares("A", 2.0, "B", 1.0)
	e.recordShares("A", 1.0)
	b := e.mineFound()
	if b.Status != payouts.StatusPending || b.Contributors != 2 || b.WindowUnits.String() != "400000000" {
		t.Fatalf("recorded block = %+v", b)
	}
	u := e.unlocker(0) // default maturity, 100
	if res := e.step(u); res.Immature != 1 || e.status(b.Hash) != payouts.StatusImmature {
		t.Fatalf("first step %+v, status %v", res, e.status(b.Hash))
	}
	e.chain.Generate(98) // 99 confirmations: one short
	e.step(u)
	if got, _ := e.store.Block(context.Background(), b.Hash); got.Status != payouts.StatusImmature || got.Confirmations != 99 {
		t.Fatalf("at 99 confirmations: %+v", got)
	}
	e.chain.Generate(1)
	if res := e.step(u); res.Credited != 1 {
		t.Fatalf("step at 100 confirmations = %+v", res)
	}
	// 5e9 sat, 1% fee = 5e7; 4.95e9 split 3:1.
	want := map[string]int64{"A": 3_712_500_000, "B": 1_237_500_000}
	if got := e.balances(); !reflect.DeepEqual(got, want) {
		t.Errorf("balances = %v, want %v", got, want)
	}
	if f := e.fees(); f != 50_000_000 {
		t.Errorf("fee balance = %d, want 50000000", f)
	}
	// The same numbers from the snapshot through Split.
	contrib, _ := e.store.Contributions(context.Background(), b.Hash)
	alloc, _ := payouts.Split(b.CoinbaseValue, 100, contrib)
	if alloc.Credits[0].Amount != want["A"] || alloc.Credits[1].Amount != want["B"] || alloc.Fee != 50_000_000 {
		t.Errorf("snapshot implies %+v", alloc)
	}
	got, _ := e.store.Block(context.Background(), b.Hash)
	if got.Status != payouts.StatusCredited || got.Reward != 5_000_000_000 || got.Fee != 50_000_000 {
		t.Errorf("credited block = %+v", got)
	}
	credits, _ := e.store.BlockCredits(context.Background(), b.Hash)
	if err := payouts.AuditCredit(got, contrib, credits); err != nil {
		t.Error(err)
	}
	utxos, _ := e.store.UTXOs(context.Background())
	if len(utxos) != 1 || utxos[0].OutPoint != b.CoinbaseOutpoint || utxos[0].Value != 5_000_000_000 {
		t.Errorf("pool utxos = %v, want %v → 5e9", utxos, b.CoinbaseOutpoint)
	}
	e.chain.Generate(1)
	if res := e.step(u); res != (payouts.StepResult{}) {
		t.Errorf("step after crediting = %+v", res)
	}
	if got := e.balances(); !reflect.DeepEqual(got, want) {
		t.Errorf("balances changed to %v", got)
	}
}

// TestUnlockerOrphan: a block that looked confirmed (6 confirmations) is
// invalidated and a longer chain mined: orphaned, never credited. A block
// that was already credited stays credited through a reorg.
func TestUnlockerOrphan(t *testing.T) { forEachNode(t, testUnlockerOrphan) }

func testUnlockerOrphan(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind)
	e.recordShares("A", 1.0)
	credited := e.mineFound()
	e.recordShares("B", 1.0)
	orphan := e.mineFound()
	e.chain.Generate(4)
	u := e.unlocker(6)
	// credited has 6 confirmations, orphan 5.
	if res := e.step(u); res.Credited != 1 || res.Immature != 1 {
		t.Fatalf("step = %+v", res)
	}
	balances := e.balances()
	if !reflect.DeepEqual(balances, map[string]int64{"A": 4_950_000_000}) {
		t.Fatalf("balances = %v", balances)
	}
	e.invalidate(orphan.Hash)
	// The replacement chain reaches only 2 blocks past the orphan's height
	// (heights 2..3 with the tip at 3): under the default OrphanDepth of 3,
	// so the block keeps its status for now.
	e.mineReplacement(2)
	if res := e.step(u); res.Forked != 1 || res.Orphaned != 0 || e.status(orphan.Hash) != payouts.StatusImmature {
		t.Fatalf("step on a 2-deep fork = %+v, status %v", res, e.status(orphan.Hash))
	}
	e.chain.Generate(6)
	if res := e.step(u); res.Orphaned != 1 || res.Credited != 0 {
		t.Fatalf("step after reorg = %+v", res)
	}
	if st := e.status(orphan.Hash); st != payouts.StatusOrphaned {
		t.Fatalf("orphan status = %v", st)
	}
	e.chain.Generate(10)
	e.step(u)
	// Now reorg the credited block away too: it stays credited, balances
	// never go back (nor negative).
	e.invalidate(credited.Hash)
	e.mineReplacement(20)
	if res := e.step(u); res != (payouts.StepResult{}) {
		t.Errorf("step after reorg of a credited block = %+v", res)
	}
	if st := e.status(credited.Hash); st != payouts.StatusCredited {
		t.Errorf("credited block became %v", st)
	}
	if got := e.balances(); !reflect.DeepEqual(got, balances) {
		t.Errorf("balances = %v, want %v", got, balances)
	}
	if st := e.status(orphan.Hash); st != payouts.StatusOrphaned {
		t.Errorf("orphan status = %v", st)
	}
}

// TestUnlockerConcurrent runs several unlockers, each with its own Redis
// connection, at the same time on matured blocks: each block is credited
// once.
func TestUnlockerConcurrent(t *testing.T) { forEachNode(t, testUnlockerConcurrent) }

func testUnlockerConcurrent(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind)
	e.recordShares("A", 1.5, "B", 0.5)
	e.mineFound()
	e.recordShares("B", 1.0)
	e.mineFound()
	e.chain.Generate(3)
	const n = 4
	var wg sync.WaitGroup
	results := make([]payouts.StepResult, n)
	unlockers := make([]*payouts.Unlocker, n)
	for i := range unlockers {
		u, err := payouts.NewUnlocker(payouts.UnlockerConfig{
			Ledger: e.newStore(), Chain: e.ledgerChain, PayoutScript: e.script,
			FeeBasisPoints: 100, Maturity: 3,
		})
		if err != nil {
			t.Fatal(err)
		}
		unlockers[i] = u
	}
	for i, u := range unlockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := u.Step(context.Background())
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	total := 0
	for _, r := range results {
		total += r.Credited
	}
	if total != 2 {
		t.Errorf("blocks credited %d times in all, want 2 (%+v)", total, results)
	}
	// Block 1: A 1.5, B 0.5 → 3712500000, 1237500000. Block 2's window
	// still holds those shares (PPLNS), plus B 1.0: A 1.5, B 1.5 → 2475000000
	// each.
	want := map[string]int64{"A": 3_712_500_000 + 2_475_000_000, "B": 1_237_500_000 + 2_475_000_000}
	if got := e.balances(); !reflect.DeepEqual(got, want) {
		t.Errorf("balances = %v, want %v", got, want)
	}
	if f := e.fees(); f != 100_000_000 {
		t.Errorf("fees = %d", f)
	}
}

// listedThenSettled is the real ledger, with UnconfirmedBlocks slowed down
// at the worst point: it lists the unconfirmed blocks, lets another
// unlocker settle them, and only then reads their records, as the list and
// the read of a step racing with another unlocker can (they are two reads).
type listedThenSettled struct {
	*redisstore.Store
	other *payouts.Unlocker
}

func (l *listedThenSettled) UnconfirmedBlocks(ctx context.Context) ([]payouts.Block, error) {
	bs, err := l.Store.UnconfirmedBlocks(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := l.other.Step(ctx); err != nil {
		return nil, err
	}
	for i := range bs {
		b, err := l.Store.Block(ctx, bs[i].Hash)
		if err != nil {
			return nil, err
		}
		bs[i] = b
	}
	return bs, nil
}

// TestUnlockerBlockSettledBetweenListAndRead: a step that finds a listed
// block already credited by another unlocker leaves it alone, without an
// error, and the block is credited once (TestUnlockerConcurrent hit this
// window now and then).
func TestUnlockerBlockSettledBetweenListAndRead(t *testing.T) {
	e := newEnv(t, "btcd")
	e.recordShares("A", 1.5, "B", 0.5)
	found := e.mineFound()
	e.chain.Generate(3)
	newUnlocker := func(l payouts.Ledger) *payouts.Unlocker {
		u, err := payouts.NewUnlocker(payouts.UnlockerConfig{
			Ledger: l, Chain: e.ledgerChain, PayoutScript: e.script, FeeBasisPoints: 100, Maturity: 3,
		})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	other := newUnlocker(e.newStore())
	late := newUnlocker(&listedThenSettled{Store: e.newStore(), other: other})
	res, err := late.Step(context.Background())
	if err != nil {
		t.Fatalf("step over a block credited meanwhile: %v", err)
	}
	if res.Credited != 0 {
		t.Fatalf("the late step credited %d blocks", res.Credited)
	}
	if st := e.status(found.Hash); st != payouts.StatusCredited {
		t.Fatalf("block status %v, want credited", st)
	}
	want := map[string]int64{"A": 3_712_500_000, "B": 1_237_500_000}
	if got := e.balances(); !reflect.DeepEqual(got, want) {
		t.Errorf("balances = %v, want %v", got, want)
	}
}

func TestUnlockerConfigValidate(t *testing.T) {
	base := func() payouts.UnlockerConfig {
		return payouts.UnlockerConfig{Ledger: fakeLedger{}, Chain: &bitcoind.Client{}, PayoutScript: []byte{0x51}}
	}
	cases := map[string]func(*payouts.UnlockerConfig){
		"no ledger":             func(c *payouts.UnlockerConfig) { c.Ledger = nil },
		"no chain":              func(c *payouts.UnlockerConfig) { c.Chain = nil },
		"no script":             func(c *payouts.UnlockerConfig) { c.PayoutScript = nil },
		"fee above 100%":        func(c *payouts.UnlockerConfig) { c.FeeBasisPoints = 10_001 },
		"negative fee":          func(c *payouts.UnlockerConfig) { c.FeeBasisPoints = -1 },
		"negative maturity":     func(c *payouts.UnlockerConfig) { c.Maturity = -1 },
		"negative orphan depth": func(c *payouts.UnlockerConfig) { c.OrphanDepth = -1 },
		"negative interval":     func(c *payouts.UnlockerConfig) { c.Interval = -1 },
	}
	for name, mutate := range cases {
		c := base()
		mutate(&c)
		if _, err := payouts.NewUnlocker(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := base()
	if err := c.Validate(); err != nil || c.Maturity != payouts.DefaultMaturity || c.Interval != payouts.DefaultUnlockerInterval ||
		c.OrphanDepth != payouts.DefaultOrphanDepth {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

// fakeLedger only satisfies the interface for config validation.
type fakeLedger struct{ payouts.Ledger }

// TestUnlockerRun: Run steps on its own until the block is credited and
// returns nil once its context ends.
func TestUnlockerRun(t *testing.T) { forEachNode(t, testUnlockerRun) }

func testUnlockerRun(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind)
	e.recordShares("A", 1.0)
	b := e.mineFound()
	e.chain.Generate(2)
	u, err := payouts.NewUnlocker(payouts.UnlockerConfig{Ledger: e.store, Chain: e.ledgerChain, PayoutScript: e.script,
		Maturity: 3, Interval: 10 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); e.status(b.Hash) != payouts.StatusCredited; {
		if time.Now().After(deadline) {
			t.Fatal("Run did not credit the matured block")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	if got := e.balances(); !reflect.DeepEqual(got, map[string]int64{"A": 5_000_000_000}) {
		t.Errorf("balances = %v", got)
	}
}

// TestSnapshotHonoursMinWindow: the snapshot counts the window the share
// ledger keeps, N = max(factor × network difficulty, MinWindow). On regtest
// the network term is below one diff unit, so without the floor the whole
// window counts; with a floor of 2 only the newest 2 difficulty do.
func TestSnapshotHonoursMinWindow(t *testing.T) { forEachNode(t, testSnapshotHonoursMinWindow) }

func testSnapshotHonoursMinWindow(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind)
	e.recordShares("A", 3.0) // older
	e.recordShares("B", 1.0) // newest
	hash := e.chain.Generate(1)[0]
	blk, err := e.chain.Client().GetBlock(hash)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := payouts.NewFoundBlock(blk, e.chain.Height(), "B.rig", e.script)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: e.store, MinWindow: 2, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.BlockFound(context.Background(), fb); err != nil {
		t.Fatal(err)
	}
	contrib, err := e.store.Contributions(context.Background(), fb.Hash)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range contrib {
		got[c.Address] = c.Units.String()
	}
	// B's 1.0 in full, then 1.0 of A's 3.0 (the share crossing N counts in part).
	want := map[string]string{"A": "100000000", "B": "100000000"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot units = %v, want %v", got, want)
	}
}
