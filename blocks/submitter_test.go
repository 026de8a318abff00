package blocks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
)

var _ blocks.Node = (*bitcoind.Client)(nil)

// flakyNode injects transport errors in front of a real node: the first
// failures submitblock calls fail without reaching it (a network error,
// which a real btcd cannot be made to produce on demand).
type flakyNode struct {
	blocks.Node
	failures int32
	calls    atomic.Int32
}

func (f *flakyNode) SubmitBlockBytes(ctx context.Context, raw []byte) (string, error) {
	if f.calls.Add(1) <= f.failures {
		return "", errors.New("connection reset by peer (injected)")
	}
	return f.Node.SubmitBlockBytes(ctx, raw)
}

type pool struct {
	node    *testenv.Btcd
	client  *bitcoind.Client
	builder *blocktemplate.Builder
	payout  btcutil.Address
	v       *shares.Validator
	en1     []byte
	ctx     context.Context
}

func newPool(t *testing.T) *pool {
	t.Helper()
	node := testenv.StartBtcd(t)
	c, err := bitcoind.New(bitcoind.Config{URL: node.RPCURL(), User: node.User, Password: node.Pass}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	payout, err := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{0x42}, 20), node.Params)
	if err != nil {
		t.Fatal(err)
	}
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: node.Params, PayoutAddress: payout.EncodeAddress(), PoolTag: "/lode/"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := shares.New(shares.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return &pool{node: node, client: c, builder: builder, payout: payout, v: v, en1: []byte{0xca, 0xfe, 0x00, 0x01}, ctx: ctx}
}

// mine fetches a template, builds the job, and searches nonces through a
// Session (the server's path) until a share is a block candidate.
func (p *pool) mine(t *testing.T) (shares.Candidate, *blocktemplate.Template) {
	t.Helper()
	return p.mineAt(t, 0)
}

// mineAt is mine with the header's time rolled ntimeAhead seconds past the
// job's, as miners roll ntime.
func (p *pool) mineAt(t *testing.T, ntimeAhead uint32) (shares.Candidate, *blocktemplate.Template) {
	t.Helper()
	raw, err := p.client.GetBlockTemplate(p.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	job, err := p.builder.Job(tpl, true)
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.v.NewWork(job)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := p.v.NewSession(p.en1, blocktemplate.DefaultVersionMask)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.SetDifficulty(1e-9); err != nil {
		t.Fatal(err)
	}
	sess.AddJob(w)
	for nonce := 0; nonce < 1<<20; nonce++ {
		res, err := submitP(sess, []string{"w", job.ID, "0000000000000007", fmt.Sprintf("%08x", job.NTime+ntimeAhead), fmt.Sprintf("%08x", nonce), "00004000"})
		if err != nil && !errors.Is(err, shares.ErrLowDifficulty) {
			t.Fatal(err)
		}
		if res.Block {
			return sess.Candidate(&res), tpl
		}
	}
	t.Fatal("no block found")
	return shares.Candidate{}, nil
}

func newSubmitter(t *testing.T, journal string, nodes ...blocks.NamedNode) *blocks.Submitter {
	t.Helper()
	s, err := blocks.NewSubmitter(blocks.SubmitterConfig{Nodes: nodes, JournalPath: journal, RetryDelay: time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSubmitterBtcd(t *testing.T) {
	p := newPool(t)
	journal := filepath.Join(t.TempDir(), "blocks.journal")

	check := func(t *testing.T, c shares.Candidate, tpl *blocktemplate.Template, rep blocks.Report, wantTxs int) {
		t.Helper()
		tip, err := p.client.GetBestBlockHash(p.ctx)
		if err != nil || tip != c.Hash {
			t.Fatalf("tip %v, want %v (%v)", tip, c.Hash, err)
		}
		blk, err := p.client.GetBlock(p.ctx, tip)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := txscript.PayToAddrScript(p.payout)
		if cb := blk.Transactions[0]; !bytes.Equal(cb.TxOut[0].PkScript, want) || cb.TxOut[0].Value != tpl.CoinbaseValue {
			t.Fatalf("coinbase pays %d to %x", cb.TxOut[0].Value, cb.TxOut[0].PkScript)
		}
		if len(blk.Transactions) != 1+wantTxs || len(tpl.Transactions) != wantTxs {
			t.Fatalf("block has %d transactions, template %d, want 1+%d", len(blk.Transactions), len(tpl.Transactions), wantTxs)
		}
		if !rep.Confirmed || rep.JournalErr != nil || rep.Hash != c.Hash || rep.Height != tpl.Height {
			t.Fatalf("report %+v", rep)
		}
	}

	t.Run("two nodes, one flaky", func(t *testing.T) {
		p.node.Generate(testenv.CoinbaseMaturity + 2)
		script, _ := txscript.PayToAddrScript(p.node.Address)
		p.node.SendTx(wire.NewTxOut(1e8, script))
		p.node.SendTx(wire.NewTxOut(2e8, script))
		flaky := &flakyNode{Node: p.client, failures: 2}
		s := newSubmitter(t, journal, blocks.NamedNode{Name: "flaky", Node: flaky}, blocks.NamedNode{Name: "btcd", Node: p.client})
		c, tpl := p.mine(t)
		rep, err := s.Submit(p.ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		check(t, c, tpl, rep, 2)
		// Both nodes are the same btcd: one accepted it, the other (after
		// two injected transport errors) found it a duplicate — or, if the
		// flaky one got there first, the other way round.
		answers := map[blocks.Answer]int{}
		for _, a := range rep.Answers {
			answers[a.Answer]++
			if !a.Confirmed {
				t.Errorf("%s did not confirm", a.Node)
			}
		}
		if answers[blocks.AnswerAccepted] != 1 || answers[blocks.AnswerDuplicate] != 1 {
			t.Fatalf("answers %+v", rep.Answers)
		}
		if rep.Answers[0].Attempts != 3 || rep.Answers[1].Attempts != 1 {
			t.Fatalf("attempts %d/%d, want 3/1", rep.Answers[0].Attempts, rep.Answers[1].Attempts)
		}
		if pending, err := s.Pending(); err != nil || len(pending) != 0 {
			t.Fatalf("pending %v %v", pending, err)
		}
	})

	t.Run("witness block", func(t *testing.T) {
		p.node.SendWitnessTx()
		s := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		c, tpl := p.mine(t)
		if tpl.WitnessCommitment == nil || !c.Job.CoinbaseWitness {
			t.Fatal("template has no witness commitment")
		}
		rep, err := s.Submit(p.ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		check(t, c, tpl, rep, 2)
		if rep.Answers[0].Answer != blocks.AnswerAccepted {
			t.Fatalf("answer %+v", rep.Answers[0])
		}
	})

	t.Run("crash before any node answered, then recover", func(t *testing.T) {
		down := &flakyNode{Node: p.client, failures: 1 << 30}
		s, err := blocks.NewSubmitter(blocks.SubmitterConfig{Nodes: []blocks.NamedNode{{Name: "down", Node: down}},
			JournalPath: journal, Attempts: 2, RetryDelay: time.Millisecond, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := p.mine(t)
		rep, err := s.Submit(p.ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if a := rep.Answers[0]; a.Answer != blocks.AnswerTransportError || a.Attempts != 2 || a.Err == nil || rep.Confirmed {
			t.Fatalf("answer %+v", a)
		}
		if pending, _ := s.Pending(); len(pending) != 1 || pending[0] != c.Hash.String() {
			t.Fatalf("pending %v", pending)
		}
		// "Restart": a new submitter on the same journal with a working node.
		s2 := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		reps, err := s2.Recover(p.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) != 1 || !reps[0].Confirmed || reps[0].Answers[0].Answer != blocks.AnswerAccepted {
			t.Fatalf("recover reports %+v", reps)
		}
		if tip, _ := p.client.GetBestBlockHash(p.ctx); tip != c.Hash {
			t.Fatalf("tip %v, want recovered block %v", tip, c.Hash)
		}
		if pending, _ := s2.Pending(); len(pending) != 0 {
			t.Fatalf("pending after recover %v", pending)
		}
		// Recovering again finds nothing to do.
		if reps, err := s2.Recover(p.ctx); err != nil || len(reps) != 0 {
			t.Fatalf("second recover %v %v", reps, err)
		}
	})

	t.Run("stale journaled block is not resubmitted", func(t *testing.T) {
		down := &flakyNode{Node: p.client, failures: 1 << 30}
		s, _ := blocks.NewSubmitter(blocks.SubmitterConfig{Nodes: []blocks.NamedNode{{Name: "down", Node: down}},
			JournalPath: journal, Attempts: 1, Logger: zaptest.NewLogger(t)})
		c, _ := p.mine(t)
		if _, err := s.Submit(p.ctx, c); err != nil {
			t.Fatal(err)
		}
		other := p.node.Generate(1)[0] // someone else wins this height
		s2 := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		reps, err := s2.Recover(p.ctx)
		if err != nil || len(reps) != 0 {
			t.Fatalf("recover %v %v", reps, err)
		}
		if tip, _ := p.client.GetBestBlockHash(p.ctx); tip != *other {
			t.Fatalf("tip moved to %v", tip)
		}
		if pending, _ := s2.Pending(); len(pending) != 0 {
			t.Fatalf("stale block still pending %v", pending)
		}
	})

	t.Run("rejections come back as answers", func(t *testing.T) {
		s := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		c, _ := p.mine(t)
		if _, err := s.Submit(p.ctx, c); err != nil {
			t.Fatal(err)
		}
		rep, err := s.Submit(p.ctx, c)
		if err != nil || rep.Answers[0].Answer != blocks.AnswerDuplicate || !rep.Confirmed {
			t.Fatalf("resubmit: %+v %v", rep, err)
		}
		// A header whose hash misses the target: high-hash.
		c2, _ := p.mine(t)
		for nonce := uint32(0); ; nonce++ {
			hdr := c2.Header
			hdr[76], hdr[77], hdr[78], hdr[79] = byte(nonce), byte(nonce>>8), byte(nonce>>16), byte(nonce>>24)
			h := chainhash.DoubleHashH(hdr[:])
			if !shares.MeetsTarget(&h, c2.Job.NetworkTarget) {
				c2.Header, c2.Hash = hdr, h
				break
			}
		}
		rep, err = s.Submit(p.ctx, c2)
		if err != nil {
			t.Fatal(err)
		}
		if a := rep.Answers[0]; a.Answer != blocks.AnswerHighHash || a.Reason == "" || a.Confirmed || rep.Confirmed {
			t.Fatalf("high-hash answer %+v", a)
		}
		// A candidate whose hash does not match the header is refused before submitting.
		c3 := c2
		c3.Hash[0] ^= 1
		if _, err := s.Submit(p.ctx, c3); err == nil || !strings.Contains(err.Error(), "differs") {
			t.Fatalf("mismatched hash: %v", err)
		}
	})
}

func TestNewSubmitterConfig(t *testing.T) {
	n := blocks.NamedNode{Name: "x", Node: &flakyNode{}}
	for _, cfg := range []blocks.SubmitterConfig{
		{JournalPath: "j"},
		{Nodes: []blocks.NamedNode{n}},
		{Nodes: []blocks.NamedNode{{Name: "nil"}}, JournalPath: "j"},
		{Nodes: []blocks.NamedNode{n}, JournalPath: "j", Attempts: -1},
	} {
		if _, err := blocks.NewSubmitter(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func submitP(s *shares.Session, params []string) (shares.Result, error) {
	var r shares.Result
	err := s.SubmitParams(params, &r)
	return r, err
}
