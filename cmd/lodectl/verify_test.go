package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// apiBlocks is the API's block reader for these tests: the store's window
// reads (the daemon wires the same redisstore.WindowAPI); the block list is
// not used here.
type apiBlocks struct{ redisstore.WindowAPI }

func (apiBlocks) Blocks(context.Context, int) ([]api.Block, error) { return nil, nil }

type verifyEnv struct {
	t      *testing.T
	rdb    *redis.Client
	store  *redisstore.Store
	node   *testenv.Btcd
	client *bitcoind.Client
	api    string
	script []byte
	seq    uint64
}

func newVerifyEnv(t *testing.T) *verifyEnv {
	t.Helper()
	srv := testenv.StartRedis(t)
	e := &verifyEnv{t: t, node: testenv.StartBtcd(t)}
	e.rdb = redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { e.rdb.Close() })
	e.store = redisstore.New(e.rdb, redisstore.Config{Prefix: "v"})
	user, pass, cookie := e.node.RPCAuth()
	c, err := bitcoind.New(bitcoind.Config{URL: e.node.RPCURL(), User: user, Password: pass, CookieFile: cookie}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e.client = c
	e.script, _ = txscript.PayToAddrScript(e.node.MiningAddress())
	s, err := api.New(api.Config{Blocks: apiBlocks{redisstore.WindowAPI{Store: e.store}}, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	e.api = hs.URL
	return e
}

// shares records one batch of instance "v" and returns the sequence of its
// last share (the finding share, when a block follows).
func (e *verifyEnv) shares(list ...any) string {
	b := &ledger.Batch{Instance: "v", Kind: ledger.BatchAccounting}
	for i := 0; i < len(list); i += 2 {
		addr, diff := list[i].(string), list[i+1].(float64)
		u, _ := ledger.DiffUnits(diff)
		e.seq++
		b.Shares = append(b.Shares, ledger.Entry{Seq: e.seq, Units: u, Share: shares.Share{Worker: addr, Address: addr, Difficulty: diff, Time: time.Now()}})
	}
	last := e.seq
	e.seq++
	b.Seq = e.seq
	if err := e.store.ApplyBatch(context.Background(), b, "0"); err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("v:%d", last)
}

// mine mines the pool's next block from a real template whose coinbase
// carries the store's pending window commitment, and records it.
func (e *verifyEnv) mine(finding string) payouts.Block {
	e.t.Helper()
	ctx := context.Background()
	raw, err := e.client.GetBlockTemplate(ctx, "")
	if err != nil {
		e.t.Fatal(err)
	}
	tpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: e.node.Chain(), PayoutAddress: e.node.MiningAddress().EncodeAddress()})
	if err != nil {
		e.t.Fatal(err)
	}
	commit, err := e.store.CommitmentScript(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	job, err := builder.JobWithCommitment(tpl, true, commit)
	if err != nil {
		e.t.Fatal(err)
	}
	en1, en2 := []byte{9, 9, 9, 9}, make([]byte, 8)
	var hdr [80]byte
	for nonce := uint32(0); ; nonce++ {
		hdr, _ = job.Header(en1, en2, job.Version, job.NTime, nonce)
		h := chainhash.DoubleHashH(hdr[:])
		if blocktemplate.HashToBig(&h).Cmp(job.NetworkTarget) <= 0 {
			break
		}
	}
	blk, err := job.Block(en1, en2, hdr)
	if err != nil {
		e.t.Fatal(err)
	}
	if reason, err := e.client.SubmitBlock(ctx, blk); err != nil || reason != "" {
		e.t.Fatalf("submitblock %q %v", reason, err)
	}
	fb, err := payouts.NewFoundBlock(blk, tpl.Height, "finder", e.script)
	if err != nil {
		e.t.Fatal(err)
	}
	fb.FindingSeq = finding
	rec, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: e.store, MinWindow: 10, Logger: zaptest.NewLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := rec.BlockFound(ctx, fb)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *verifyEnv) credit(b payouts.Block, feeBasisPoints int64) {
	e.t.Helper()
	ctx := context.Background()
	contrib, err := e.store.Contributions(ctx, b.Hash)
	if err != nil {
		e.t.Fatal(err)
	}
	alloc, err := payouts.Split(b.CoinbaseValue, feeBasisPoints, contrib)
	if err != nil {
		e.t.Fatal(err)
	}
	if ok, err := e.store.CreditBlock(ctx, payouts.BlockCredit{Hash: b.Hash, Allocation: alloc, Confirmations: 100, Time: time.Now()}); !ok || err != nil {
		e.t.Fatalf("credit %v %v", ok, err)
	}
}

func (e *verifyEnv) lodectl(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String() + errb.String()
}

// TestVerifyBlockAndProof: lodectl verify block recomputes a credited
// block's window, split and on-chain commitment and says OK; verify proof
// checks an address's proof offline. Tampering with one archived entry, one
// credit, or a window and its root together (an operator rewriting history:
// only the on-chain commitment catches it) makes it fail with exit 1 and a
// line naming what differs.
func TestVerifyBlockAndProof(t *testing.T) {
	e := newVerifyEnv(t)
	ctx := context.Background()
	e.shares("addrA", 3.0, "addrB", 1.0, "addrA", 0.5)
	first := e.mine(e.shares("addrC", 0.25, "addrB", 2.0))
	second := e.mine(e.shares("addrA", 1.0)) // commits first's window
	e.credit(first, 100)
	h := first.Hash.String()
	user, pass, _ := e.node.RPCAuth()
	t.Setenv("LODE_RPC_PASSWORD", pass)

	code, out := e.lodectl("verify", "block", "-api", e.api, "-rpc", e.node.RPCURL(), "-rpc-user", user, h)
	if code != 0 || !strings.HasPrefix(out, "OK block "+h) || !strings.Contains(out, "committed in "+second.Hash.String()+" (checked on the node)") ||
		!strings.Contains(out, "match the split") {
		t.Fatalf("verify block: exit %d: %s", code, out)
	}
	t.Log(strings.TrimSpace(out))

	// The proof, as a miner downloads it, checked offline.
	res, err := http.Get(e.api + "/api/v1/blocks/" + h + "/proof?address=addrB")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("proof: %d %s", res.StatusCode, body)
	}
	file := filepath.Join(t.TempDir(), "proof.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := e.lodectl("verify", "proof", file); code != 0 || !strings.HasPrefix(out, "OK proof of addrB") {
		t.Fatalf("verify proof: exit %d: %s", code, out)
	}
	p, _ := window.ParseProof(body)
	p.Credit++
	tampered, _ := json.Marshal(p)
	_ = os.WriteFile(file, tampered, 0o600)
	if code, out := e.lodectl("verify", "proof", file); code != 1 || !strings.Contains(out, "MISMATCH") || !strings.Contains(out, "credit") {
		t.Fatalf("tampered proof: exit %d: %s", code, out)
	}

	// The archive is the window's slices (docs/redis.md): its newest slice
	// holds addrB's and addrC's entries, "first|last|units".
	record := "v:{acct}:block:" + h
	last, err := e.rdb.HGet(ctx, record, "window_slice_last").Result()
	if err != nil {
		t.Fatal(err)
	}
	archive := "v:{acct}:pplns:s:" + last
	orig, err := e.rdb.HGet(ctx, archive, "addrB").Result()
	if err != nil {
		t.Fatal(err)
	}
	midOrig, _ := e.rdb.HGet(ctx, archive, "addrC").Result()
	for _, tc := range []struct {
		name           string
		tamper, revert func()
		want           string
	}{
		{"one archived entry", func() {
			parts := strings.Split(orig, "|")
			u, _ := new(big.Int).SetString(parts[2], 10)
			parts[2] = u.Add(u, big.NewInt(1)).String()
			e.rdb.HSet(ctx, archive, "addrB", strings.Join(parts, "|"))
		}, func() { e.rdb.HSet(ctx, archive, "addrB", orig) }, "window root"},
		{"one credit", func() { e.rdb.HIncrBy(ctx, record+":credits", "addrB", -1) },
			func() { e.rdb.HIncrBy(ctx, record+":credits", "addrB", 1) }, "credits"},
		{"the committed root (window and root rewritten together)", func() {
			// Rewrite a leaf's sequence range and store the matching root:
			// units, credits and bounds unchanged, everything in Redis
			// consistent; only the chain remembers the original root.
			parts := strings.Split(midOrig, "|")
			parts[0] = "v:0"
			e.rdb.HSet(ctx, archive, "addrC", strings.Join(parts, "|"))
			var leaves []window.Leaf
			_ = e.store.WindowLeaves(ctx, first.Hash, func(l window.Leaf) error { leaves = append(leaves, l); return nil })
			tree, _ := window.Build(leaves)
			e.rdb.HSet(ctx, record, "window_root", tree.Root().Hash.String())
		}, func() { e.rdb.HSet(ctx, archive, "addrC", midOrig) }, "on-chain commitment"}, // the slice is in the next window too
	} {
		tc.tamper()
		code, out := e.lodectl("verify", "block", "-api", e.api, "-rpc", e.node.RPCURL(), "-rpc-user", user, h)
		if code != 1 || !strings.HasPrefix(out, "MISMATCH block "+h) || !strings.Contains(out, tc.want) {
			t.Fatalf("%s tampered: exit %d: %s (want a line naming %q)", tc.name, code, out, tc.want)
		}
		t.Logf("%s tampered: %s", tc.name, strings.TrimSpace(out))
		if tc.revert != nil {
			tc.revert()
		}
	}
	if code, out := e.lodectl("verify", "block", "-api", e.api, strings.Repeat("0", 64)); code != 2 || !strings.Contains(out, "404") {
		t.Fatalf("unknown block: exit %d: %s", code, out)
	}
	testWindowEndpoints(t, e, second)
}

// testWindowEndpoints: NDJSON holds the same leaves as JSON; bad input gets
// 400; a pruned archive 410 with the summary still readable.
func testWindowEndpoints(t *testing.T, e *verifyEnv, b payouts.Block) {
	h := b.Hash.String()
	get := func(path string) (int, string) {
		res, err := http.Get(e.api + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	code, body := get("/api/v1/blocks/" + h + "/window?format=ndjson")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || int64(len(lines)) != 1+b.WindowLeaves || !strings.HasPrefix(lines[0], `{"block":`) {
		t.Fatalf("ndjson: %d %s", code, body)
	}
	doc, err := fetchWindow(context.Background(), http.DefaultClient, e.api, h)
	if err != nil || int64(len(doc.Leaves)) != b.WindowLeaves {
		t.Fatalf("json: %v %v", doc, err)
	}
	for path, want := range map[string]int{
		"/api/v1/blocks/xyz/window":                                      400,
		"/api/v1/blocks/" + h + "/proof":                                 400,
		"/api/v1/blocks/" + h + "/proof?address=nobody":                  404,
		"/api/v1/blocks/" + strings.Repeat("1", 64) + "/proof?address=a": 404,
	} {
		if code, body := get(path); code != want {
			t.Errorf("GET %s: %d, want %d: %s", path, code, want, body)
		}
	}
	if _, err := e.store.PruneWindowArchives(context.Background(), 0, 0, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/api/v1/blocks/" + h + "/window"); code != 410 || !strings.Contains(body, `"root": "`+b.WindowRoot.String()) {
		t.Fatalf("pruned: %d %s", code, body)
	}
	if code, out := e.lodectl("verify", "block", "-api", e.api, h); code != 2 || !strings.Contains(out, "410") {
		t.Fatalf("verify a pruned block: exit %d: %s", code, out)
	}
}
