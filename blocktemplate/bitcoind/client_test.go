package bitcoind

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/testenv"
)

// newClient returns a Client for node with the node's own credentials:
// rpcuser/rpcpassword for btcd, the cookie file for Core.
func newClient(t *testing.T, node testenv.Node) *Client {
	t.Helper()
	user, pass, cookie := node.RPCAuth()
	c, err := New(Config{URL: node.RPCURL(), User: user, Password: pass, CookieFile: cookie}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no scheme", Config{URL: "127.0.0.1:8332", User: "u"}, "rpc url"},
		{"ftp", Config{URL: "ftp://127.0.0.1:8332", User: "u"}, "scheme"},
		{"path", Config{URL: "http://127.0.0.1:8332/wallet/x", User: "u"}, "host:port"},
		{"no credentials", Config{URL: "http://127.0.0.1:8332"}, "credentials"},
		{"negative timeout", Config{URL: "http://127.0.0.1:8332", User: "u", Timeout: -1}, "timeouts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(Config{URL: "http://127.0.0.1:1", CookieFile: filepath.Join(t.TempDir(), "missing")}, nil); err == nil {
		t.Error("missing cookie file accepted")
	}
}

// TestCookieReread starts with a stale cookie (wrong password: 401), then
// writes the right one, as Core does on restart: the next call re-reads it.
func TestCookieReread(t *testing.T) {
	node := testenv.StartBtcd(t)
	cookie := filepath.Join(t.TempDir(), ".cookie")
	if err := os.WriteFile(cookie, []byte(node.User+":wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{URL: node.RPCURL(), CookieFile: cookie}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	if _, err := c.GetBlockCount(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("stale cookie: err %v, want 401", err)
	}
	if err := os.WriteFile(cookie, []byte(node.User+":"+node.Pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := c.GetBlockCount(ctx); err != nil || n != 0 {
		t.Fatalf("after new cookie: %d %v", n, err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	// A listener that accepts and never answers: the call must give up at
	// its timeout, and a cancelled ctx must end it at once.
	srv := startSilentServer(t)
	c, err := New(Config{URL: "http://" + srv, User: "u", Password: "p", Timeout: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetBlockCount(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetBestBlockHash(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
}

func TestTemplateAndBlockQueries(t *testing.T) {
	nodes.ForEach(t, testTemplateAndBlockQueries)
}

// subsidy is the regtest block subsidy at height (halving every 150).
func subsidy(height int64) int64 { return 50e8 >> (height / 150) }

func testTemplateAndBlockQueries(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	ctx := testCtx(t)
	base := node.Height()
	hashes := node.Generate(3)
	raw, err := c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatalf("GetBlockTemplate: %v", err)
	}
	tpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatalf("ParseTemplate(%s): %v\n%s", node.Kind(), err, raw)
	}
	if tpl.Height != base+4 || tpl.PrevHash != *hashes[2] || tpl.CoinbaseValue < subsidy(base+4) || tpl.LongPollID == "" {
		t.Errorf("template height %d prev %s value %d longpoll %q", tpl.Height, tpl.PrevHash, tpl.CoinbaseValue, tpl.LongPollID)
	}
	best, err := c.GetBestBlockHash(ctx)
	if err != nil || best != *hashes[2] {
		t.Errorf("best %s %v", best, err)
	}
	if n, err := c.GetBlockCount(ctx); err != nil || n != base+3 {
		t.Errorf("count %d %v", n, err)
	}
	h, err := c.GetBlockHash(ctx, base+2)
	if err != nil || h != *hashes[1] {
		t.Errorf("hash(%d) %s %v", base+2, h, err)
	}
	blk, err := c.GetBlock(ctx, h)
	if err != nil || blk.BlockHash() != h {
		t.Fatalf("getblock %v", err)
	}
	info, err := c.GetBlockInfo(ctx, h)
	if err != nil || info.Height != base+2 || info.Confirmations != 2 || !info.InMainChain {
		t.Errorf("info %+v %v", info, err)
	}
	if _, err := c.GetBlockHash(ctx, base+1000); !errors.Is(err, ErrNotFound) {
		t.Errorf("height %d: %v, want ErrNotFound", base+1000, err)
	}
	if _, err := c.GetBlockInfo(ctx, chainhash.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown block: %v, want ErrNotFound", err)
	}
}

// mineJob searches a nonce for job the way a miner does, building the
// header from the notify fields by hand (not through blocktemplate).
func mineJob(t *testing.T, job *blocktemplate.Job, en1, en2 []byte, wantHigh bool) [80]byte {
	t.Helper()
	n := job.Notify()
	cb := bytes.Join([][]byte{mustHex(t, n.Coinb1), en1, en2, mustHex(t, n.Coinb2)}, nil)
	root := sha256d(cb)
	for _, b := range n.MerkleBranch {
		root = sha256d(append(root[:], mustHex(t, b)...))
	}
	var hdr [80]byte
	binary.LittleEndian.PutUint32(hdr[0:], job.Version)
	prev := mustHex(t, n.PrevHash)
	for i := 0; i < 32; i += 4 { // stratum words → header order
		hdr[4+i], hdr[5+i], hdr[6+i], hdr[7+i] = prev[i+3], prev[i+2], prev[i+1], prev[i]
	}
	copy(hdr[36:], root[:])
	binary.LittleEndian.PutUint32(hdr[68:], job.NTime)
	binary.LittleEndian.PutUint32(hdr[72:], job.Bits)
	return solve(t, hdr, job.NetworkTarget, wantHigh)
}

// solve rolls the nonce of hdr until its hash is at or below target (or
// above it, with wantHigh).
func solve(t *testing.T, hdr [80]byte, target *big.Int, wantHigh bool) [80]byte {
	t.Helper()
	for nonce := uint32(0); nonce < 1<<20; nonce++ {
		binary.LittleEndian.PutUint32(hdr[76:], nonce)
		h := chainhash.Hash(sha256d(hdr[:]))
		below := blocktemplate.HashToBig(&h).Cmp(target) <= 0
		if below != wantHigh {
			return hdr
		}
	}
	t.Fatal("no nonce found")
	return hdr
}

func sha256d(b []byte) [32]byte {
	first := sha256.Sum256(b)
	return sha256.Sum256(first[:])
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hexDecode(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payoutAddress is a P2TR regtest address unrelated to the node's key.
func payoutAddress(t *testing.T) btcutil.Address {
	t.Helper()
	_, pub := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{0x33}, 32))
	a, err := btcutil.NewAddressTaproot(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub)), &chainParams)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestEndToEndBlock is issue 2 §5: real mempool transactions → template →
// job paying our address → CPU-mined header → Job.Block → submitblock → the
// node's tip is our block and its coinbase pays us. The witness case also
// exercises the witness commitment and the coinbase's reserved value.
func TestEndToEndBlock(t *testing.T) {
	nodes.ForEach(t, testEndToEndBlock)
}

func testEndToEndBlock(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	ctx := testCtx(t)
	payout := payoutAddress(t)
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: node.Chain(), PayoutAddress: payout.EncodeAddress(), PoolTag: "/lode-test/"})
	if err != nil {
		t.Fatal(err)
	}
	en1 := []byte{0xde, 0xad, 0xbe, 0xef}
	en2 := []byte{1, 2, 3, 4, 5, 6, 7, 8}

	mine := func(t *testing.T, wantTxs []*wire.MsgTx, wantCommitment bool) {
		raw, err := c.GetBlockTemplate(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := blocktemplate.ParseTemplate(raw)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if (tpl.WitnessCommitment != nil) != wantCommitment {
			t.Fatalf("template commitment %x, want present=%v", tpl.WitnessCommitment, wantCommitment)
		}
		inTemplate := map[chainhash.Hash]bool{}
		for _, tx := range tpl.Transactions {
			inTemplate[tx.TxID] = true
		}
		for _, tx := range wantTxs {
			if !inTemplate[tx.TxHash()] {
				t.Fatalf("template lacks mempool tx %s", tx.TxHash())
			}
		}
		job, err := builder.Job(tpl, true)
		if err != nil {
			t.Fatal(err)
		}
		hdr := mineJob(t, job, en1, en2, false)
		block, err := job.Block(en1, en2, hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetBlockHeader(ctx, block.BlockHash()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("header of a block not sent yet: %v, want ErrNotFound", err)
		}
		// What a found block takes: the bytes as assembled, not decoded.
		blockBytes, err := job.BlockBytes(en1, en2, hdr)
		if err != nil {
			t.Fatal(err)
		}
		reason, err := c.SubmitBlockBytes(ctx, blockBytes)
		if err != nil || reason != "" {
			t.Fatalf("submitblock: reason %q err %v", reason, err)
		}
		tip, err := c.GetBestBlockHash(ctx)
		if err != nil || tip != block.BlockHash() {
			t.Fatalf("tip %s, want our block %s (%v)", tip, block.BlockHash(), err)
		}
		if h, err := c.GetBlockHeader(ctx, tip); err != nil || h.BlockHash() != tip {
			t.Fatalf("header of our block: %v", err)
		}
		got, err := c.GetBlock(ctx, tip)
		if err != nil {
			t.Fatal(err)
		}
		cb := got.Transactions[0]
		want, _ := txscript.PayToAddrScript(payout)
		if cb.TxOut[0].Value != tpl.CoinbaseValue || !bytes.Equal(cb.TxOut[0].PkScript, want) {
			t.Errorf("coinbase pays %d to %x, want %d to %x", cb.TxOut[0].Value, cb.TxOut[0].PkScript, tpl.CoinbaseValue, want)
		}
		if !bytes.Contains(cb.TxIn[0].SignatureScript, []byte("/lode-test/")) {
			t.Errorf("pool tag missing from %x", cb.TxIn[0].SignatureScript)
		}
		if len(got.Transactions) != 1+len(tpl.Transactions) {
			t.Errorf("block has %d txs, template %d", len(got.Transactions), len(tpl.Transactions))
		}
		if wantCommitment && (len(cb.TxIn[0].Witness) != 1 || !bytes.Equal(cb.TxIn[0].Witness[0], make([]byte, 32))) {
			t.Errorf("coinbase witness %x", cb.TxIn[0].Witness)
		}
		// The same block again is not accepted twice: Core says
		// "duplicate", btcd "already have block".
		wantDup := map[string]string{testenv.KindCore: "duplicate", testenv.KindBtcd: "already have block"}[node.Kind()]
		if reason, err := c.SubmitBlock(ctx, block); err != nil || !strings.Contains(reason, wantDup) {
			t.Errorf("duplicate submit: reason %q err %v, want %q", reason, err, wantDup)
		}
	}

	t.Run("legacy", func(t *testing.T) {
		// Mature enough coinbases first: SendTx would otherwise mine a
		// block that takes the first transaction out of the mempool.
		node.Generate(testenv.CoinbaseMaturity + 5)
		script, _ := txscript.PayToAddrScript(payout)
		tx1 := node.SendTx(wire.NewTxOut(1e8, script))
		tx2 := node.SendTx(wire.NewTxOut(2e8, script))
		// Core commits to witnesses whenever segwit is active (from
		// genesis on regtest); btcd only for blocks with witness data.
		mine(t, []*wire.MsgTx{tx1, tx2}, node.Kind() == testenv.KindCore)
	})
	t.Run("witness", func(t *testing.T) {
		node := node.For(t)
		node.ActivateSegwit()
		node.Generate(testenv.CoinbaseMaturity + 5) // SendWitnessTx mines nothing
		funding, wtx := node.SendWitnessTx()
		if !wtx.HasWitness() {
			t.Fatal("SendWitnessTx gave no witness")
		}
		mine(t, []*wire.MsgTx{funding, wtx}, true)
	})
}

// TestSubmitBlockRejections checks that the node's answers come back as
// reasons, not errors: refusals (each node's own words), a duplicate, and
// Core's "inconclusive" for a valid block that lost the race for its height.
func TestSubmitBlockRejections(t *testing.T) {
	nodes.ForEach(t, testSubmitBlockRejections)
}

func testSubmitBlockRejections(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	ctx := testCtx(t)
	node.Generate(1)
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: node.Chain(), PayoutAddress: payoutAddress(t).EncodeAddress()})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	job, err := builder.Job(tpl, true)
	if err != nil {
		t.Fatal(err)
	}
	en1, en2 := make([]byte, 4), make([]byte, 8)
	high := mineJob(t, job, en1, en2, true)
	good := mineJob(t, job, en1, en2, false)
	badRoot := good
	badRoot[40] ^= 1
	badRoot = solve(t, badRoot, job.NetworkTarget, false)
	// No transactions, and the merkle root of none (zero), so the node
	// objects to the empty block itself.
	emptyRoot := good
	clear(emptyRoot[36:68])
	emptyRoot = solve(t, emptyRoot, job.NetworkTarget, false)
	core := node.Kind() == testenv.KindCore
	pick := func(coreSays, btcdSays string) string {
		if core {
			return coreSays
		}
		return btcdSays
	}
	tests := []struct {
		name string
		hdr  [80]byte
		edit func(b *wire.MsgBlock)
		want string // part of the node's reason
	}{
		{"high hash", high, nil, pick("high-hash", "higher than expected")},
		{"bad merkle root", badRoot, nil, pick("bad-txnmrklroot", "merkle root is invalid")},
		{"no transactions", emptyRoot, func(b *wire.MsgBlock) { b.Transactions = nil }, pick("bad-blk-length", "any transactions")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			block, err := job.Block(en1, en2, tc.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(block)
			}
			reason, err := c.SubmitBlock(ctx, block)
			if err != nil {
				t.Fatalf("transport error %v", err)
			}
			if !strings.Contains(reason, tc.want) {
				t.Fatalf("reason %q, want it to contain %q", reason, tc.want)
			}
			t.Logf("node says %q", reason)
		})
	}
	tip, _ := c.GetBestBlockHash(ctx)
	if tip != tpl.PrevHash {
		t.Errorf("tip moved to %s", tip)
	}

	// The node finds a block at the same height first; ours is valid but
	// only ties: Core answers "inconclusive" (kept as a side branch, it may
	// still win), btcd accepts it as a side-chain block (null). Then a
	// duplicate of the losing block.
	theirs := *node.Generate(1)[0]
	block, err := job.Block(en1, en2, good)
	if err != nil {
		t.Fatal(err)
	}
	reason, err := c.SubmitBlock(ctx, block)
	if err != nil || reason != pick("inconclusive", "") {
		t.Fatalf("tied block: reason %q err %v, want %q", reason, err, pick("inconclusive", ""))
	}
	if tip, _ := c.GetBestBlockHash(ctx); tip != theirs {
		t.Fatalf("tip %s, want the node's own block %s", tip, theirs)
	}
	info, err := c.GetBlockInfo(ctx, block.BlockHash())
	if err != nil || info.InMainChain || info.Height != tpl.Height {
		t.Fatalf("tied block: %+v %v, want height %d off the main chain", info, err, tpl.Height)
	}
	reason, err = c.SubmitBlock(ctx, block)
	if err != nil || !strings.Contains(reason, pick("duplicate", "already have block")) {
		t.Fatalf("duplicate of the tied block: reason %q err %v", reason, err)
	}
}

// TestBlockInfoOrphan: a block taken out of the main chain (invalidateblock,
// then a competing block at its height) reports InMainChain=false.
func TestBlockInfoOrphan(t *testing.T) {
	nodes.ForEach(t, func(t *testing.T, node testenv.Node) {
		c := newClient(t, node)
		ctx := testCtx(t)
		node.Generate(2)
		orphan := *node.Generate(1)[0]
		height := node.Height()
		info, err := c.GetBlockInfo(ctx, orphan)
		if err != nil || !info.InMainChain || info.Height != height || info.Confirmations != 1 {
			t.Fatalf("before reorg: %+v %v", info, err)
		}
		node.InvalidateBlock(orphan)
		winner := *node.Generate(2)[0]
		if h, err := c.GetBlockHash(ctx, height); err != nil || h != winner {
			t.Fatalf("height %d is %s (%v), want %s", height, h, err, winner)
		}
		info, err = c.GetBlockInfo(ctx, orphan)
		if err != nil {
			t.Fatalf("orphan info: %v", err)
		}
		if info.InMainChain || info.Height != height || info.Confirmations != -1 {
			t.Errorf("orphan: %+v", info)
		}
	})
}

// TestLongPollLane: a long poll blocks on its own lane while ordinary calls
// go through, and returns the new template when a block arrives.
func TestLongPollLane(t *testing.T) {
	nodes.ForEach(t, testLongPollLane)
}

func testLongPollLane(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	ctx := testCtx(t)
	raw, err := c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		raw []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		raw, err := c.GetBlockTemplate(ctx, tpl.LongPollID)
		done <- result{raw, err}
	}()
	// Ordinary calls are not queued behind the long poll.
	for i := 0; i < 3; i++ {
		if _, err := c.GetBlockCount(ctx); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("long poll returned before any change: %v", r.err)
	default:
	}
	tip := node.Generate(1)[0]
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	next, err := blocktemplate.ParseTemplate(r.raw)
	if err != nil {
		t.Fatal(err)
	}
	if next.PrevHash != *tip || next.LongPollID == tpl.LongPollID {
		t.Fatalf("long poll template prev %s lpid %q", next.PrevHash, next.LongPollID)
	}
	c.Close()
	if _, err := c.GetBlockCount(ctx); err == nil {
		t.Error("call after Close succeeded")
	}
}
