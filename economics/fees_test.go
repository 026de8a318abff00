package economics

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// memChain is an in-memory chain for the cache logic (the real node is
// tested in blocktemplate/bitcoind); failAt injects a node failure.
type memChain struct {
	mu     sync.Mutex
	blocks []BlockSummary // index = height
	failAt int64          // BlockSummary of this height fails; -1 none
	calls  int
}

func (c *memChain) extend(n int, fees func(h int64) int64, fork byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t0 := time.Unix(1_700_000_000, 0)
	for range n {
		h := int64(len(c.blocks))
		var hash chainhash.Hash
		hash[0], hash[1], hash[2] = byte(h), byte(h>>8), fork
		c.blocks = append(c.blocks, BlockSummary{Height: h, Hash: hash, Time: t0.Add(time.Duration(h) * 10 * time.Minute), Bits: 0x1d00ffff, Fees: btcutil.Amount(fees(h)), FeesFrom: "coinbase"})
	}
}

func (c *memChain) reorg(depth int, fees func(int64) int64) {
	c.mu.Lock()
	c.blocks = c.blocks[:len(c.blocks)-depth]
	c.mu.Unlock()
	c.extend(depth+1, fees, 1)
}

func (c *memChain) TipHeight(context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.blocks) - 1), nil
}

func (c *memChain) BlockHash(_ context.Context, h int64) (chainhash.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocks[h].Hash, nil
}

func (c *memChain) BlockSummary(_ context.Context, h int64) (BlockSummary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if h == c.failAt {
		return BlockSummary{}, errors.New("node hiccup")
	}
	return c.blocks[h], nil
}

func TestFeeTrackerWindowAndReorg(t *testing.T) {
	ctx := context.Background()
	c := &memChain{failAt: -1}
	c.extend(300, func(h int64) int64 { return h * 100 }, 0)
	f := NewFeeTracker(c, 144)
	if err := f.Update(ctx); err != nil {
		t.Fatal(err)
	}
	bs := f.Blocks()
	if len(bs) != 144 || bs[0].Height != 156 || bs[143].Height != 299 || f.Fetched() != 144 {
		t.Fatalf("window %d..%d (%d blocks, %d fetched)", bs[0].Height, bs[len(bs)-1].Height, len(bs), f.Fetched())
	}
	// Fees 15600..29900 step 100: mean = median = 22750.
	s := SummariseFees(bs)
	if s.Mean != 22750 || s.Median != 22750 || s.Total != 22750*144 || s.Source != "coinbase" {
		t.Fatalf("%+v", s)
	}
	// Nothing new: no block fetched again.
	if err := f.Update(ctx); err != nil || f.Fetched() != 144 {
		t.Fatalf("refetched: %d, %v", f.Fetched(), err)
	}
	// Two new blocks: two fetches.
	c.extend(2, func(h int64) int64 { return 0 }, 0)
	if err := f.Update(ctx); err != nil || f.Fetched() != 146 {
		t.Fatalf("after 2 blocks: %d fetched, %v", f.Fetched(), err)
	}
	// A 3-block reorg (4 new blocks on the fork): exactly those refetched.
	c.reorg(3, func(h int64) int64 { return 1_000_000 })
	if err := f.Update(ctx); err != nil || f.Fetched() != 150 {
		t.Fatalf("after reorg: %d fetched, %v", f.Fetched(), err)
	}
	bs = f.Blocks()
	for _, b := range bs[len(bs)-4:] {
		if b.Fees != 1_000_000 || b.Hash[2] != 1 {
			t.Fatalf("block %d still from the old branch: %+v", b.Height, b)
		}
	}
	if len(bs) != 144 {
		t.Fatalf("window holds %d", len(bs))
	}
}

// A node failure in the middle of a reorg's walk leaves no old-branch
// block behind the new tip.
func TestFeeTrackerFailureDuringReorg(t *testing.T) {
	ctx := context.Background()
	c := &memChain{failAt: -1}
	c.extend(50, func(int64) int64 { return 1 }, 0)
	f := NewFeeTracker(c, 20)
	if err := f.Update(ctx); err != nil {
		t.Fatal(err)
	}
	c.reorg(5, func(int64) int64 { return 2 }) // heights 45..50 replaced/added
	c.failAt = 46
	if err := f.Update(ctx); err == nil {
		t.Fatal("no error")
	}
	c.failAt = -1
	if err := f.Update(ctx); err != nil {
		t.Fatal(err)
	}
	for _, b := range f.Blocks() {
		want := btcutil.Amount(1)
		if b.Height >= 45 {
			want = 2
		}
		if b.Fees != want {
			t.Fatalf("block %d fees %d, want %d (stale branch kept)", b.Height, b.Fees, want)
		}
	}
	if n := len(f.Blocks()); n != 20 {
		t.Fatalf("%d blocks", n)
	}
}

func TestSummariseFeesMedianEven(t *testing.T) {
	s := SummariseFees([]BlockSummary{{Height: 3, Fees: 10}, {Height: 1, Fees: 40}, {Height: 2, Fees: 20}, {Height: 4, Fees: 1000, FeesFrom: "x"}})
	if s.Median != 30 || s.Mean != 267.5 || s.FromHeight != 1 || s.ToHeight != 4 || s.Source != "mixed" {
		t.Fatalf("%+v", s)
	}
	if e := SummariseFees(nil); e.Blocks != 0 || e.Mean != 0 {
		t.Fatalf("%+v", e)
	}
}

// The engine over a chain: trailing fees on both bases, observed hashrate
// and the retarget forecast from the epoch's first block.
func TestEngineWithChain(t *testing.T) {
	c := &memChain{failAt: -1}
	c.extend(2016+150, func(h int64) int64 { return 1000 + h%7 }, 0)
	tip := c.blocks[len(c.blocks)-1]
	now := tip.Time.Add(5 * time.Minute)
	tmpl := TemplateInfo{Height: tip.Height + 1, Bits: 0x1d00ffff, CoinbaseValue: 50e8 + 1234}
	e, err := New(Config{FeeWindowBlocks: 144}, Deps{Params: &chaincfg.MainNetParams, Templates: fakeTemplates{tmpl}, Chain: c, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := e.Snapshot().Network
	if n.Trailing == nil || n.Trailing.Blocks != 144 || n.Trailing.ToHeight != tip.Height || n.RevenueBasis != BasisTrailingMean {
		t.Fatalf("trailing %+v basis %s", n.Trailing, n.RevenueBasis)
	}
	hpMean := Hashprice(1, 50e8) + ExpectedBlocksPerTHDay(1)*n.Trailing.Mean
	near(t, "trailing mean hashprice", n.Hashprice[BasisTrailingMean].SatPerTHDay, hpMean, 1e-12)
	near(t, "template hashprice", n.Hashprice[BasisTemplate].SatPerTHDay, Hashprice(1, 50e8+1234), 1e-12)
	// 143 intervals of 600 s at D = 1: the implied rate, times 142/143.
	near(t, "observed", *n.ObservedHashrate, ImpliedNetworkHashrate(1)*142/143, 1e-9)
	// k = 149 blocks after block 2016, in 149·600 + 300 s.
	r := n.Retarget
	if !r.Available || r.Blocks != 149 || r.EpochStart != 2016 {
		t.Fatalf("retarget %+v", r)
	}
	near(t, "next difficulty", r.NextDifficulty, 600*149/(149*600+300.0), 1e-12)
	near(t, "hashprice after", n.HashpriceAfterRetarget.Value, hpMean/r.NextDifficulty, 1e-12)
}

// A window with a gap (a partial read) gives the observed hashrate of the
// consecutive run at the tip only.
func TestObservedHashrateSkipsGaps(t *testing.T) {
	c := &memChain{failAt: -1}
	c.extend(30, func(int64) int64 { return 0 }, 0)
	blocks := append(append([]BlockSummary(nil), c.blocks[5:10]...), c.blocks[20:30]...)
	e, err := New(Config{}, Deps{Params: &chaincfg.MainNetParams, Templates: fakeTemplates{TemplateInfo{Height: 30, Bits: 0x1d00ffff}}})
	if err != nil {
		t.Fatal(err)
	}
	s := e.compute(inputs{now: c.blocks[29].Time, tmpl: TemplateInfo{Height: 30, Bits: 0x1d00ffff}, blocks: blocks}, nil, nil)
	if s.Network.ObservedBlocks != 9 {
		t.Fatalf("observed over %d intervals, want the 9 of blocks 20..29", s.Network.ObservedBlocks)
	}
	near(t, "observed", *s.Network.ObservedHashrate, ImpliedNetworkHashrate(1)*8/9, 1e-12)
}
