package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// TestDaemonWindowsEndAtFindingShares: a stratum+api lode on regtest (every
// share is a block) records each block with a window that ends exactly at
// its own finding share: boundary exact, the newest leaf is the finding
// share (a block share closes its batch), the total grows by one share per
// block, the archive hashes to the stored root; and the pool's later blocks
// commit the earlier roots in their coinbase, as the node has them.
func TestDaemonWindowsEndAtFindingShares(t *testing.T) {
	e := newOutageEnv(t)
	// New jobs every 300 ms (clean_jobs false): a job built after a
	// snapshot commits its root.
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "  poll_interval: 200ms\n", "  poll_interval: 200ms\n  refresh_interval: 300ms\n", 1))
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	e.redis.Restart()
	_, stop := e.start(t)
	hashes := e.mine(t, 3)
	e.waitRecorded(t, hashes)
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: e.redis.Addr, Prefix: "fb"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	// Mine until the first three windows are committed by later blocks
	// (a job built after a snapshot commits its root); bounded.
	allCommitted := func() bool {
		for _, hs := range hashes[:3] {
			h, _ := chainhash.NewHashFromStr(hs)
			b, err := s.Block(ctx, *h)
			if err != nil || b.CommittedIn == "" {
				return false
			}
		}
		return true
	}
	for i := 0; i < 20 && !allCommitted(); i++ {
		more := e.mine(t, 1)
		e.waitRecorded(t, more)
		hashes = append(hashes, more...)
		h, _ := chainhash.NewHashFromStr(more[0])
		e.api.waitFor(t, "the block's root", time.Minute, func() bool {
			b, err := s.Block(ctx, *h)
			return err == nil && b.WindowRoot != nil
		})
	}
	if !allCommitted() {
		t.Fatal("the first windows were not committed by later pool blocks")
	}
	var prev *payouts.Block
	committed := map[string]map[string]bool{} // window → blocks whose coinbase commits it
	for _, hs := range hashes {
		h, _ := chainhash.NewHashFromStr(hs)
		var b payouts.Block
		e.api.waitFor(t, "window root of "+hs, time.Minute, func() bool {
			b, err = s.Block(ctx, *h)
			return err == nil && b.WindowRoot != nil
		})
		var leaves []window.Leaf
		if err := s.WindowLeaves(ctx, *h, func(l window.Leaf) error { leaves = append(leaves, l); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := payouts.VerifyWindow(b, leaves, nil); err != nil {
			t.Fatal(err)
		}
		if b.WindowBoundary != payouts.BoundaryExact || b.FindingSeq == "" || b.WindowLastSeq != b.FindingSeq || b.WindowTruncated {
			t.Fatalf("block %d: boundary %q finding %q last %q truncated %v", b.Height, b.WindowBoundary, b.FindingSeq, b.WindowLastSeq, b.WindowTruncated)
		}
		if prev != nil && b.WindowUnits.Cmp(prev.WindowUnits) <= 0 {
			t.Fatalf("block %d: window %s units, not above the previous block's %s", b.Height, b.WindowUnits, prev.WindowUnits)
		}
		prev = &b
		// The coinbase as the node has it.
		blk, err := e.node.Client().GetBlock(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range blk.Transactions[0].TxOut {
			c, ok := window.ParseCommitScript(out.PkScript)
			if !ok {
				continue
			}
			names, list, err := s.BlockCommits(ctx, *h)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Check(list); err != nil {
				t.Fatalf("block %d's on-chain commitment: %v", b.Height, err)
			}
			for _, n := range names {
				if committed[n] == nil {
					committed[n] = map[string]bool{}
				}
				committed[n][hs] = true
			}
		}
	}
	stop()
	// Each of the first windows is committed by the block its record names
	// (the first recorded; jobs built before that block was recorded commit
	// it again, harmlessly), whose coinbase (as the node has it) carries the
	// commitment checked above.
	for _, hs := range hashes[:3] {
		h, _ := chainhash.NewHashFromStr(hs)
		b, _ := s.Block(ctx, *h)
		if !committed[hs][b.CommittedIn] {
			t.Errorf("window of %s: committed on chain in %v, record says %q", hs, committed[hs], b.CommittedIn)
		}
	}
}
