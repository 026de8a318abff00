package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/shares"
)

// mineCandidate builds a job from the node's template and searches nonces
// through a shares.Session (the server's path) until a share is a block.
func mineCandidate(t *testing.T, ctx context.Context, node *testenv.Btcd, c *bitcoind.Client) shares.Candidate {
	t.Helper()
	raw, err := c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: node.Params, PayoutAddress: node.Address.EncodeAddress(), PoolTag: "/lode/"})
	if err != nil {
		t.Fatal(err)
	}
	job, err := builder.Job(tpl, true)
	if err != nil {
		t.Fatal(err)
	}
	v, err := shares.New(shares.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := v.NewWork(job)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := v.NewSession([]byte{0xca, 0xfe, 0, 1}, blocktemplate.DefaultVersionMask)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.SetDifficulty(1e-9); err != nil {
		t.Fatal(err)
	}
	sess.AddJob(w)
	for nonce := 0; nonce < 1<<20; nonce++ {
		var res shares.Result
		err := sess.SubmitParams([]string{"w", job.ID, "0000000000000007", fmt.Sprintf("%08x", job.NTime), fmt.Sprintf("%08x", nonce), "00004000"}, &res)
		if err != nil && !errors.Is(err, shares.ErrLowDifficulty) {
			t.Fatal(err)
		}
		if res.Block {
			return sess.Candidate(&res)
		}
	}
	t.Fatal("no block found")
	return shares.Candidate{}
}

// TestFoundBlockJournalUnwritable: the block journal cannot be written (its
// directory is gone) and Redis is down when the node accepts a block; the
// record is kept in memory and taken once Redis is back.
func TestFoundBlockJournalUnwritable(t *testing.T) {
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
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: rs.Addr, Prefix: "fu"})
	if err != nil {
		t.Fatal(err)
	}
	recorder, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: store, MinWindow: 1})
	if err != nil {
		t.Fatal(err)
	}
	submitter, err := shares.NewBlockSubmitter(shares.SubmitterConfig{
		Nodes:       []shares.NamedNode{{Name: "btcd", Node: client}},
		JournalPath: filepath.Join(t.TempDir(), "gone", "blocks.journal"),
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

	rs.Stop()
	c := mineCandidate(t, ctx, node, client)
	rep, err := f.Submit(ctx, c)
	if err != nil || !rep.Confirmed || rep.JournalErr == nil {
		t.Fatalf("submit: %+v %v", rep, err)
	}
	const worker = "finder.rig"
	sh := shares.Share{Worker: worker, JobHeight: c.Job.Height, Block: true}
	cand := f.noteFinder(sh)
	if cand == nil {
		t.Fatal("the accepted block's candidate is not pending")
	}
	f.recordFinder(ctx, cand, sh.Worker, "") // Redis is down: fails, kept in memory
	if _, err := store.Block(ctx, c.Hash); err == nil {
		t.Fatal("block recorded while Redis was down")
	}

	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.run(runCtx) }()
	rs.Restart()
	// Recorded means every step done (snapshot, then its window root), so
	// the block leaves the in-memory retry list; the record alone appears
	// before the root is written.
	var blk payouts.Block
	testenv.WaitFor(t, time.Minute, "the block recorded and no longer waiting in memory", func() bool {
		f.mu.Lock()
		left := len(f.failed)
		f.mu.Unlock()
		blk, err = store.Block(ctx, c.Hash)
		return err == nil && left == 0
	})
	stopRun()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if blk.Finder != worker || blk.Height != c.Job.Height || blk.Status != payouts.StatusPending {
		t.Fatalf("record %+v", blk)
	}
}
