package stratum_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum"
)

// TestRegtestPoolEndToEnd runs the whole pool path against a real btcd
// regtest node: Manager → Server → three CPU miners (with and without
// version rolling) → shares.Session → BlockSubmitter → btcd. On regtest every
// share is also a block.
func TestRegtestPoolEndToEnd(t *testing.T) {
	node := testenv.StartBtcd(t)
	log := zaptest.NewLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	rpc, err := bitcoind.New(bitcoind.Config{URL: node.RPCURL(), User: node.User, Password: node.Pass}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer rpc.Close()
	_, pub := btcec.PrivKeyFromBytes([]byte("lode stratum e2e pool key 32 byt"))
	poolAddr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), node.Params)
	if err != nil {
		t.Fatal(err)
	}
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: node.Params, PayoutAddress: poolAddr.EncodeAddress(), PoolTag: "/lode-e2e/"})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := blocktemplate.NewManager(blocktemplate.ManagerConfig{Source: rpc, Builder: builder, PollInterval: 50 * time.Millisecond, RefreshInterval: -1, Logger: log.Named("manager")})
	if err != nil {
		t.Fatal(err)
	}
	val, err := shares.New(shares.Config{})
	if err != nil {
		t.Fatal(err)
	}
	submitter, err := blocks.NewSubmitter(blocks.SubmitterConfig{
		Nodes:       []blocks.NamedNode{{Name: "btcd", Node: rpc}},
		JournalPath: filepath.Join(t.TempDir(), "blocks.journal"),
		Logger:      log.Named("blocks"),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &stratum.MemoryRecorder{}
	srv, err := stratum.New(stratum.Config{
		Ports:      []stratum.Port{{Address: "127.0.0.1:0", StartDifficulty: 1e-5, MinDifficulty: 1e-8}},
		Network:    node.Params,
		InstanceID: []byte{1},
		Jobs:       mgr,
		Validator:  val,
		Blocks:     submitter,
		BlockFound: mgr,
		Recorder:   rec,
		Logger:     log.Named("stratum"),
		Vardiff:    stratum.Vardiff{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	wg.Add(3)
	go func() { defer wg.Done(); _ = mgr.Run(runCtx) }()
	go func() { defer wg.Done(); srv.Follow(runCtx, mgr.Subscribe(runCtx)) }()
	go func() {
		defer wg.Done()
		if err := srv.Run(runCtx); err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	defer func() { stop(); wg.Wait() }()
	waitFor(t, "first job", func() bool { return mgr.Current() != nil })
	startHeight := node.Height()

	cfgs := []miner.Config{
		{Username: node.Address.EncodeAddress() + ".roll", VersionRolling: true, VersionMask: 0x1fffe000},
		{Username: node.WitnessAddress.EncodeAddress() + ".esp", VersionRolling: true, Pipeline: true},
		{Username: node.Address.EncodeAddress() + ".cpu"},
	}
	miners := make([]*miner.Miner, len(cfgs))
	for i, c := range cfgs {
		c.Address = srv.Addrs()[0].String()
		c.Password = "x"
		m, err := miner.Dial(ctx, c)
		if err != nil {
			t.Fatalf("miner %d: %v", i, err)
		}
		defer m.Close()
		miners[i] = m
	}
	var mwg sync.WaitGroup
	stats := make([]miner.Stats, len(miners))
	errs := make([]error, len(miners))
	for i, m := range miners {
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			stats[i], errs[i] = m.Run(ctx, 2)
		}()
	}
	mwg.Wait()
	for i := range miners {
		if errs[i] != nil {
			t.Fatalf("miner %d: %v", i, errs[i])
		}
		// Every share is a block, so a miner's in-flight share can be for a
		// block another miner just found: stale (21) and nothing else.
		for code := range stats[i].ByCode {
			if code != 21 {
				t.Fatalf("miner %d rejections %v", i, stats[i].ByCode)
			}
		}
		if stats[i].Accepted < 2 {
			t.Fatalf("miner %d accepted %d", i, stats[i].Accepted)
		}
	}
	st := srv.Stats()
	// Blocks are submitted beside the shares' replies: the last ones may
	// still be on their way to the node.
	waitFor(t, "blocks submitted", func() bool { return st.BlocksConfirmed.Load()+st.BlockErrors.Load() >= st.Blocks.Load() })
	if st.BlocksConfirmed.Load() < 6 || st.BlockErrors.Load() != 0 {
		t.Fatalf("blocks confirmed %d, errors %d", st.BlocksConfirmed.Load(), st.BlockErrors.Load())
	}
	// The chain moved and its tip pays the pool.
	c := node.Client()
	tipHash, err := c.GetBestBlockHash()
	if err != nil {
		t.Fatal(err)
	}
	// Blocks found at the same height by two miners are both confirmed
	// (one on a side branch), so the height grows by at least one.
	if h := node.Height(); h <= startHeight {
		t.Fatalf("height %d, started at %d", h, startHeight)
	}
	tip, err := c.GetBlock(tipHash)
	if err != nil {
		t.Fatal(err)
	}
	poolScript, _ := txscript.PayToAddrScript(poolAddr)
	if got := tip.Transactions[0].TxOut[0].PkScript; string(got) != string(poolScript) {
		t.Fatalf("tip coinbase pays %x, want pool %x", got, poolScript)
	}
	blocks := 0
	for _, s := range rec.Shares() {
		if s.Block {
			blocks++
		}
	}
	if blocks < 6 {
		t.Fatalf("recorded %d block shares", blocks)
	}

	// A block made outside the pool reaches every miner as a clean job.
	ext := node.Generate(1)[0]
	for _, m := range miners {
		waitFor(t, "clean job on the external block", func() bool {
			j := m.CurrentJob()
			return j != nil && j.Clean && j.PrevHash == [32]byte(*ext)
		})
	}
	_, _, _, n := st.TipToNotify.Snapshot()
	if n == 0 {
		t.Fatal("no tip-to-notify observations")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, what, cond)
}
