package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/shares"
)

// TestFoundTimeIsWhenThePoolFoundIt (issue 15): a block's found_at was the
// header's timestamp, which a miner's clock and ntime rolling move (up to
// ~30 s ahead on regtest). The record now carries when the pool found it:
// recordFinder's clock, or the journal's time for a block recorded later.
func TestFoundTimeIsWhenThePoolFoundIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := testenv.StartBtcd(t)
	node.Generate(1)
	client, err := bitcoind.New(bitcoind.Config{URL: node.RPCURL(), User: node.User, Password: node.Pass}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rs := testenv.StartRedis(t)
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: rs.Addr, Prefix: "ft"})
	if err != nil {
		t.Fatal(err)
	}
	recorder, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: store, MinWindow: 1})
	if err != nil {
		t.Fatal(err)
	}
	submitter, err := shares.NewBlockSubmitter(shares.SubmitterConfig{
		Nodes:       []shares.NamedNode{{Name: "btcd", Node: client}},
		JournalPath: filepath.Join(t.TempDir(), "blocks.journal"),
		Logger:      zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	script, err := txscript.PayToAddrScript(node.Address)
	if err != nil {
		t.Fatal(err)
	}
	metrics := api.NewMetrics(api.Sources{})
	f := newFoundBlocks(submitter, recorder, script, func() *api.Metrics { return metrics }, nil, zaptest.NewLogger(t))
	c := mineCandidate(t, ctx, node, client)
	if rep, err := f.Submit(ctx, c); err != nil || !rep.Confirmed {
		t.Fatalf("submit: %+v %v", rep, err)
	}
	block, err := c.Job.Block(c.Extranonce1, c.Extranonce2, c.Header)
	if err != nil {
		t.Fatal(err)
	}
	// A found time far from the header's, as a block recorded from the
	// journal after an outage has.
	foundAt := block.Header.Timestamp.Add(-90 * time.Second).Truncate(time.Millisecond)
	if err := f.record(ctx, block, c.Job.Height, "finder.rig", foundAt, ""); err != nil {
		t.Fatal(err)
	}
	blk, err := store.Block(ctx, c.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !blk.Time.Equal(foundAt) {
		t.Fatalf("found_at %v, want when the pool found it (%v), not the header's %v", blk.Time, foundAt, block.Header.Timestamp)
	}
}
