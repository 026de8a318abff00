package payment_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts/payment"
)

const testPrefix = "paytest"

// env is a pool ledger in a real redis-server next to a real regtest node
// (btcd or Bitcoin Core), with pool UTXOs the test key can spend.
type env struct {
	t      *testing.T
	redis  *testenv.Redis
	chain  testenv.Node
	params *chaincfg.Params
	key    *btcec.PrivateKey
	rdb    redis.UniversalClient // a cluster client in the Cluster tests
	store  *redisstore.Store
	rpc    *rpcclient.Client
	node   *bitcoind.Client
	pool   btcutil.Address
	kind   poolKind // of pool
	script []byte
	start  int64 // chain height before any payout
	total  int64 // Σ pool UTXOs = Σ balances + fee account at seeding
}

type poolKind string

const (
	p2pkh  poolKind = "p2pkh"
	p2wpkh poolKind = "p2wpkh"
	p2tr   poolKind = "p2tr"
)

func poolAddress(t testing.TB, key *btcec.PrivateKey, kind poolKind, params *chaincfg.Params) btcutil.Address {
	t.Helper()
	pub := key.PubKey()
	var a btcutil.Address
	var err error
	switch kind {
	case p2pkh:
		a, err = btcutil.NewAddressPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), params)
	case p2wpkh:
		a, err = btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), params)
	case p2tr:
		a, err = btcutil.NewAddressTaproot(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub)), params)
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// forEachNode runs fn as a subtest for every node kind (btcd, Bitcoin
// Core). Each test starts its own node (newEnv): these tests mine hundreds
// of blocks (regtest halves the subsidy every 150), reorganise, and spend
// coinbases they picked themselves, which one node shared by the package
// would not survive.
func forEachNode(t *testing.T, fn func(t *testing.T, nodeKind string)) {
	for _, kind := range testenv.NodeKinds {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// newEnv starts redis-server and a regtest node of nodeKind and records
// pool UTXOs paying the test key's address of the given kind (fund). nodeArgs
// go to testenv.StartNode.
func newEnv(t *testing.T, nodeKind string, kind poolKind, n int, nodeArgs ...string) *env {
	t.Helper()
	e := &env{t: t}
	e.redis = testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	e.rdb = rdb
	e.store = redisstore.New(rdb, redisstore.Config{Prefix: testPrefix})
	e.chain = testenv.StartNode(t, nodeKind, nodeArgs...)
	e.fund(kind, n)
	return e
}

// fund takes the test key's address of the given kind as the pool's and
// records n pool UTXOs paying it: for P2PKH the coinbases of blocks 1..n
// (matured by 100 more blocks, as the unlocker would record them); for
// P2WPKH and P2TR n outputs of a transaction funding that address (btcd
// mines 432 blocks first to activate segwit). e.chain runs; e.store and
// e.rdb are set.
func (e *env) fund(kind poolKind, n int) {
	t := e.t
	t.Helper()
	e.params, e.key = e.chain.Chain(), e.chain.TestKey()
	e.rpc = e.chain.Client()
	e.node = newNode(t, e.chain, "")
	e.pool, e.kind = poolAddress(t, e.key, kind, e.params), kind
	e.script, _ = txscript.PayToAddrScript(e.pool)
	ctx := context.Background()
	var utxos []payment.UTXO
	if n == 0 {
		// Funds come later (the unlocker records them).
	} else if kind == p2pkh {
		hashes := e.chain.Generate(uint32(n))
		for _, h := range hashes {
			blk, err := e.rpc.GetBlock(h)
			if err != nil {
				t.Fatal(err)
			}
			cb := blk.Transactions[0]
			utxos = append(utxos, payment.UTXO{OutPoint: wire.OutPoint{Hash: cb.TxHash(), Index: 0}, Value: cb.TxOut[0].Value})
		}
		e.chain.Generate(testenv.CoinbaseMaturity)
	} else {
		e.chain.ActivateSegwit()
		var outs []*wire.TxOut
		for i := 0; i < n; i++ {
			outs = append(outs, wire.NewTxOut(int64(10+i)*btcutil.SatoshiPerBitcoin, e.script))
		}
		tx := e.chain.SendTx(outs...)
		e.chain.Generate(1)
		for i, o := range outs {
			utxos = append(utxos, payment.UTXO{OutPoint: wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)}, Value: o.Value})
		}
	}
	for _, u := range utxos {
		if err := e.rdb.HSet(ctx, e.store.UTXOsKey(), u.Key(), u.Value).Err(); err != nil {
			t.Fatal(err)
		}
		e.total += u.Value
	}
	e.start = e.chain.Height()
}

// seed writes the balances; the fee account gets the rest of the pool's
// funds, so Σ balances + fee account = Σ UTXOs as after the unlocker.
func (e *env) seed(balances map[string]int64) {
	e.t.Helper()
	ctx := context.Background()
	var sum int64
	for a, v := range balances {
		if err := e.rdb.HSet(ctx, e.store.BalancesKey(), a, v).Err(); err != nil {
			e.t.Fatal(err)
		}
		sum += v
	}
	if sum > e.total {
		e.t.Fatalf("balances %d exceed pool funds %d", sum, e.total)
	}
	if err := e.rdb.Set(ctx, e.store.FeeBalanceKey(), e.total-sum, 0).Err(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) config(mode payment.Mode) payment.Config {
	c := payment.Config{
		Params:      e.params,
		PoolAddress: e.pool.EncodeAddress(),
		Mode:        mode,
		Threshold:   1_000_000,
		MaxOutputs:  3,
		Logger:      zaptest.NewLogger(e.t),
	}
	if mode == payment.ModeHot {
		c.Key = e.key
	}
	return c
}

func (e *env) processor(c payment.Config) *payment.Processor {
	e.t.Helper()
	p, err := payment.New(c, e.store, e.node)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// received sums what every output script got on chain since the seeding,
// by scanning every block: a second payment anywhere would show.
func (e *env) received() map[string]int64 {
	e.t.Helper()
	got := map[string]int64{}
	tip := e.chain.Height()
	for h := e.start + 1; h <= tip; h++ {
		hash, err := e.rpc.GetBlockHash(h)
		if err != nil {
			e.t.Fatal(err)
		}
		blk, err := e.rpc.GetBlock(hash)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, tx := range blk.Transactions[1:] {
			for _, o := range tx.TxOut {
				_, addrs, _, _ := txscript.ExtractPkScriptAddrs(o.PkScript, e.params)
				if len(addrs) == 1 {
					got[addrs[0].EncodeAddress()] += o.Value
				}
			}
		}
	}
	return got
}

// checkLedger asserts, to the satoshi, that nothing was created or lost:
// Σ balances + fee account + paid + network fees = the pool's initial funds;
// and that the pool's UTXOs (change returned) plus what open payouts still
// hold back equal Σ balances + fee account.
func (e *env) checkLedger() payment.Totals {
	e.t.Helper()
	ctx := context.Background()
	bal, err := e.store.Balances(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	fee, err := e.store.FeeBalance(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	tot, err := e.store.Totals(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var sum int64
	for _, v := range bal {
		if v < 0 {
			e.t.Fatalf("negative balance %d", v)
		}
		sum += v
	}
	if got := sum + fee + tot.Paid + tot.Fees; got != e.total {
		e.t.Fatalf("balances %d + fee account %d + paid %d + fees %d = %d, want %d", sum, fee, tot.Paid, tot.Fees, got, e.total)
	}
	utxos, err := e.store.UTXOs(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	open, err := e.store.OpenPayouts(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var held int64
	for _, u := range utxos {
		held += u.Value
	}
	for _, p := range open {
		held += p.ChangeValue
	}
	if held != sum+fee {
		e.t.Fatalf("pool utxos + open change = %d, want balances + fee account = %d", held, sum+fee)
	}
	return tot
}

// recipient returns a deterministic address of a key nobody else uses; the
// kinds rotate through P2PKH, P2WPKH, P2TR and P2SH.
func recipient(t testing.TB, i int, params *chaincfg.Params) string {
	seed := sha256.Sum256([]byte(fmt.Sprintf("recipient %d", i)))
	k, _ := btcec.PrivKeyFromBytes(seed[:])
	switch i % 4 {
	case 0:
		return poolAddress(t, k, p2pkh, params).EncodeAddress()
	case 1:
		return poolAddress(t, k, p2wpkh, params).EncodeAddress()
	case 2:
		return poolAddress(t, k, p2tr, params).EncodeAddress()
	}
	a, err := btcutil.NewAddressScriptHash(seed[:], params)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

func TestHotPayoutsEndToEnd(t *testing.T) { forEachNode(t, testHotPayoutsEndToEnd) }

func testHotPayoutsEndToEnd(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 3)
	ctx := context.Background()
	params := e.params
	balances := map[string]int64{}
	want := map[string]int64{}
	for i := 0; i < 8; i++ {
		a := recipient(t, i, params)
		balances[a] = int64(2_000_000 + i*1_234_567)
		want[a] = balances[a]
	}
	small := recipient(t, 100, params)
	balances[small] = 999_999 // below the default threshold
	override := recipient(t, 101, params)
	balances[override] = 5_000_000 // above the default, below its override
	invalid := "not-an-address"
	balances[invalid] = 3_000_000
	mainnet := "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
	balances[mainnet] = 4_000_000
	e.seed(balances)
	if err := e.store.SetThreshold(ctx, override, 6_000_000); err != nil {
		t.Fatal(err)
	}

	p := e.processor(e.config(payment.ModeHot))
	dry, err := p.RunOnce(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Payouts) != 3 || dry.Payouts[0].Fee <= 0 || dry.Payouts[0].ID != 0 {
		t.Fatalf("dry run planned %d payouts: %+v", len(dry.Payouts), dry.Payouts)
	}
	// A fresh regtest node has no fee estimate (Core: estimatesmartfee
	// answers "Insufficient data or no feerate found"; btcd has no
	// estimatesmartfee and its estimatefee gives none): the floor is used and
	// the run says why.
	wantWhy := map[string]string{testenv.KindCore: "estimatesmartfee 6: no estimate: Insufficient data",
		testenv.KindBtcd: "estimatefee 6: no estimate"}[nodeKind]
	if dry.FeeRate != payment.DefaultFeeRateFloor || !strings.HasPrefix(dry.FeeRateSource, "floor (node: ") ||
		!strings.Contains(dry.FeeRateSource, wantWhy) {
		t.Fatalf("fee rate %d from %q, want the floor %d because of %q", dry.FeeRate, dry.FeeRateSource,
			payment.DefaultFeeRateFloor, wantWhy)
	}
	if tot := e.checkLedger(); tot.Payouts != 0 {
		t.Fatalf("dry run committed: %+v", tot)
	}
	if len(dry.Skipped) != 2 {
		t.Fatalf("skipped = %+v, want the two invalid addresses", dry.Skipped)
	}

	res, err := p.RunOnce(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	// 8 recipients at 3 outputs per transaction; one 50 BTC coinbase each.
	if len(res.Payouts) != 3 || res.Open != 3 {
		t.Fatalf("payouts %d, open %d; want 3, 3 (%+v)", len(res.Payouts), res.Open, res)
	}
	for i, po := range res.Payouts {
		if po.State != payment.StateBroadcast || po.FeeRate != payment.DefaultFeeRateFloor || dry.Payouts[i].Fee != po.Fee {
			t.Fatalf("payout %d: state %s fee rate %d fee %d (dry %d)", po.ID, po.State, po.FeeRate, po.Fee, dry.Payouts[i].Fee)
		}
		st, err := e.node.TxStatus(ctx, mustHash(t, po.TxID))
		if err != nil || !st.Found || st.Confirmations != 0 {
			t.Fatalf("payout %d tx %s: %+v, %v; want in the mempool", po.ID, po.TxID, st, err)
		}
	}
	e.checkLedger()
	// Nothing is left to pay: a second run builds nothing new.
	again, err := p.RunOnce(ctx, false)
	if err != nil || len(again.Payouts) != 0 {
		t.Fatalf("second run: %d payouts, %v", len(again.Payouts), err)
	}

	// Unconfirmed long past the limit: flagged stuck, not repaid.
	later := e.config(payment.ModeHot)
	later.Now = func() time.Time { return time.Now().Add(payment.DefaultStuckAfter + time.Hour) }
	res, err = e.processor(later).RunOnce(ctx, false)
	if err != nil || res.Stuck != 3 || len(res.Payouts) != 0 {
		t.Fatalf("stuck run: stuck %d, payouts %d, err %v", res.Stuck, len(res.Payouts), err)
	}
	list, _ := e.store.Payouts(ctx, 10)
	for _, po := range list {
		if po.State != payment.StateStuck {
			t.Fatalf("payout %d is %s, want stuck", po.ID, po.State)
		}
	}

	e.chain.Generate(1)
	res, err = p.RunOnce(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Resolved) != 3 || res.Open != 0 {
		t.Fatalf("resolved %d, open %d; want 3, 0", len(res.Resolved), res.Open)
	}
	tot := e.checkLedger()
	got := e.received()
	var paid int64
	for a, v := range want {
		if got[a] != v {
			t.Errorf("%s received %d on chain, want %d", a, got[a], v)
		}
		paid += v
	}
	for _, a := range []string{small, override} {
		if got[a] != 0 {
			t.Errorf("%s below its threshold received %d", a, got[a])
		}
	}
	if tot.Paid != paid {
		t.Fatalf("totals paid %d, want %d", tot.Paid, paid)
	}
	bal, _ := e.store.Balances(ctx)
	if bal[invalid] != 3_000_000 || bal[mainnet] != 4_000_000 || bal[small] != 999_999 || bal[override] != 5_000_000 || len(bal) != 4 {
		t.Fatalf("balances left = %v", bal)
	}
	// The change came back: the UTXO set is the three change outputs.
	utxos, _ := e.store.UTXOs(ctx)
	if len(utxos) != 3 {
		t.Fatalf("pool utxos after confirmation = %v, want 3 change outputs", utxos)
	}
	for _, u := range utxos {
		out, err := e.node.GetTxOut(ctx, u.OutPoint, false)
		if err != nil || out == nil || out.Value != u.Value {
			t.Fatalf("change %s: node says %+v, %v", u.Key(), out, err)
		}
	}
}

func TestMinersPayFee(t *testing.T) { forEachNode(t, testMinersPayFee) }

func testMinersPayFee(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 1)
	ctx := context.Background()
	balances := map[string]int64{}
	for i := 0; i < 5; i++ {
		balances[recipient(t, i, e.params)] = int64(1_500_000 + i*333_333)
	}
	e.seed(balances)
	c := e.config(payment.ModeHot)
	c.FeePayer, c.MaxOutputs = payment.FeePayerMiners, 10
	c.FeeRateFloor = 12_345
	feeBefore, _ := e.store.FeeBalance(ctx)
	res, err := e.processor(c).RunOnce(ctx, false)
	if err != nil || len(res.Payouts) != 1 {
		t.Fatalf("run: %v, %d payouts", err, len(res.Payouts))
	}
	po := res.Payouts[0]
	e.chain.Generate(1)
	if _, err := e.processor(c).RunOnce(ctx, false); err != nil {
		t.Fatal(err)
	}
	got := e.received()
	var shares int64
	for _, o := range po.Outputs {
		if got[o.Address] != o.Amount || o.Debit != balances[o.Address] {
			t.Errorf("%s: received %d, payout says %d, debit %d, balance was %d", o.Address, got[o.Address], o.Amount, o.Debit, balances[o.Address])
		}
		shares += o.Debit - o.Amount
	}
	if shares != po.Fee || po.FeeAccountDebit != 0 {
		t.Fatalf("fee shares %d, fee %d, fee account debit %d", shares, po.Fee, po.FeeAccountDebit)
	}
	if fee, _ := e.store.FeeBalance(ctx); fee != feeBefore {
		t.Fatalf("fee account %d, want untouched %d", fee, feeBefore)
	}
	// The fee is what the node charges: inputs minus outputs on chain.
	tx, err := e.rpc.GetRawTransaction(mustHashPtr(t, po.TxID))
	if err != nil {
		t.Fatal(err)
	}
	var out int64
	for _, o := range tx.MsgTx().TxOut {
		out += o.Value
	}
	if in := po.Inputs[0].Value; in-out != po.Fee {
		t.Fatalf("on-chain fee %d, recorded %d", in-out, po.Fee)
	}
	vsize := (int64(tx.MsgTx().SerializeSizeStripped())*3 + int64(tx.MsgTx().SerializeSize()) + 3) / 4
	if po.Fee < vsize*12_345/1000 {
		t.Fatalf("fee %d below the floor for %d vbytes", po.Fee, vsize)
	}
	e.checkLedger()
}

// newNode is the node client the daemon uses, with the node's credentials
// (user and password, or Core's cookie file), at url (the node's own if
// empty); rpcclient retries refused connections for a long while, so a
// short timeout keeps node-down tests quick.
func newNode(t testing.TB, n testenv.Node, url string) *bitcoind.Client {
	t.Helper()
	if url == "" {
		url = n.RPCURL()
	}
	user, pass, cookie := n.RPCAuth()
	c, err := bitcoind.New(bitcoind.Config{URL: url, User: user, Password: pass, CookieFile: cookie, Timeout: 3 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func mustHash(t testing.TB, s string) chainhash.Hash {
	t.Helper()
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		t.Fatal(err)
	}
	return *h
}

func mustHashPtr(t testing.TB, s string) *chainhash.Hash {
	h := mustHash(t, s)
	return &h
}

func TestBadInputKeepsBalances(t *testing.T) { forEachNode(t, testBadInputKeepsBalances) }

func testBadInputKeepsBalances(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 1)
	ctx := context.Background()
	a, b := recipient(t, 1, e.params), recipient(t, 2, e.params)
	e.seed(map[string]int64{a: 30 * btcutil.SatoshiPerBitcoin, b: 19 * btcutil.SatoshiPerBitcoin})
	snapshot := func() string {
		bal, err1 := e.store.Balances(ctx)
		fee, err2 := e.store.FeeBalance(ctx)
		u, err3 := e.store.UTXOs(ctx)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		return fmt.Sprint(bal, fee, u)
	}
	before := snapshot()

	t.Run("insufficient funds", func(t *testing.T) {
		// Two 1-output batches: the 50 BTC coinbase pays the first only.
		c := e.config(payment.ModeHot)
		c.MaxOutputs = 1
		// Raise b so the two no longer fit one coinbase.
		if err := e.rdb.HSet(ctx, e.store.BalancesKey(), b, 25*btcutil.SatoshiPerBitcoin).Err(); err != nil {
			t.Fatal(err)
		}
		defer e.rdb.HSet(ctx, e.store.BalancesKey(), b, 19*btcutil.SatoshiPerBitcoin)
		res, err := e.processor(c).RunOnce(ctx, true)
		if !errors.Is(err, payment.ErrInsufficientFunds) || len(res.Failed) != 1 || len(res.Payouts) != 1 {
			t.Fatalf("err %v, failed %+v, payouts %d", err, res.Failed, len(res.Payouts))
		}
	})
	t.Run("fee account empty", func(t *testing.T) {
		old, _ := e.store.FeeBalance(ctx)
		e.rdb.Set(ctx, e.store.FeeBalanceKey(), 10, 0)
		defer e.rdb.Set(ctx, e.store.FeeBalanceKey(), old, 0)
		_, err := e.processor(e.config(payment.ModeHot)).RunOnce(ctx, false)
		if !errors.Is(err, payment.ErrInsufficientFunds) || !strings.Contains(err.Error(), "fee account") {
			t.Fatalf("err = %v", err)
		}
	})
	if got := snapshot(); got != before {
		t.Fatalf("ledger changed:\n%s\n%s", before, got)
	}
	t.Run("node down", func(t *testing.T) {
		// A node that refuses connections: nothing listens on this port.
		down, err := bitcoind.New(bitcoind.Config{URL: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)),
			User: "x", Password: "y", Timeout: 500 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer down.Close()
		p, err := payment.New(e.config(payment.ModeHot), e.store, down)
		if err != nil {
			t.Fatal(err)
		}
		// The first call to the node (the transaction-index check) fails.
		_, err = p.RunOnce(ctx, false)
		if err == nil || !strings.Contains(err.Error(), "getblockcount") {
			t.Fatalf("err = %v, want a getblockcount failure", err)
		}
	})
	if got := snapshot(); got != before {
		t.Fatalf("ledger changed:\n%s\n%s", before, got)
	}
	t.Run("redis down", func(t *testing.T) {
		e.redis.Stop()
		defer func() {
			e.redis.Restart()
			// Redis accepts connections while it reloads its append-only
			// file and answers LOADING meanwhile: wait until it serves.
			for i := 0; ; i++ {
				if _, err := e.store.Balances(ctx); err == nil {
					return
				} else if i == 200 {
					t.Fatalf("redis not serving after restart: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		_, err := e.processor(e.config(payment.ModeHot)).RunOnce(ctx, false)
		// The first read of a run is the open payouts (are new ones halted?).
		if err == nil || !strings.Contains(err.Error(), "read open payouts") {
			t.Fatalf("err = %v, want a read open payouts failure", err)
		}
	})
	if got := snapshot(); got != before {
		t.Fatalf("ledger changed:\n%s\n%s", before, got)
	}
	// Everything back: the payout goes through.
	res, err := e.processor(e.config(payment.ModeHot)).RunOnce(ctx, false)
	if err != nil || len(res.Payouts) != 1 || res.Payouts[0].State != payment.StateBroadcast {
		t.Fatalf("after recovery: %v, %+v", err, res)
	}
	e.checkLedger()
}

// TestMain doubles as the crash-test child: with LODE_PAYMENT_CHILD set it
// runs one payout run and SIGKILLs itself at the named point.
func TestMain(m *testing.M) {
	if point := os.Getenv("LODE_PAYMENT_CHILD"); point != "" {
		os.Exit(child(point))
	}
	os.Exit(m.Run())
}

func child(point string) int {
	ctx := context.Background()
	params := &chaincfg.RegressionNetParams
	key, err := payment.LoadKey(payment.KeySource{Env: "LODE_TEST_WIF"}, params, os.Getenv, os.ReadFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	store := redisstore.New(redis.NewClient(&redis.Options{Addr: os.Getenv("LODE_TEST_REDIS")}),
		redisstore.Config{Prefix: testPrefix})
	// As the daemon with redis.mode sentinel or cluster, redis.min_replicas_acked 1.
	replicated := redisstore.ConnectConfig{Prefix: testPrefix, MinReplicasAcked: 1,
		ReplicaAckTimeout: 500 * time.Millisecond, Logger: zap.NewNop()}
	if sentinels := os.Getenv("LODE_TEST_SENTINELS"); sentinels != "" {
		replicated.Mode, replicated.Addrs, replicated.MasterName = redisstore.ModeSentinel, strings.Split(sentinels, ","), testenv.SentinelMaster
	} else if nodes := os.Getenv("LODE_TEST_CLUSTER"); nodes != "" {
		replicated.Mode, replicated.Addrs = redisstore.ModeCluster, strings.Split(nodes, ",")
	}
	if replicated.Mode != "" {
		store, err = redisstore.Connect(ctx, replicated)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
	}
	node, err := bitcoind.New(bitcoind.Config{URL: os.Getenv("LODE_TEST_NODE_URL"), User: os.Getenv("LODE_TEST_NODE_USER"),
		Password: os.Getenv("LODE_TEST_NODE_PASS"), CookieFile: os.Getenv("LODE_TEST_NODE_COOKIE")}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	p, err := payment.New(payment.Config{Params: params, PoolAddress: os.Getenv("LODE_TEST_POOL"), Key: key,
		Threshold: 1_000_000, MaxOutputs: 3, Logger: zap.NewNop()}, store, node)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	kill := func(*payment.Payout) { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL); select {} }
	switch point {
	case "commit":
		payment.SetTestHooks(p, kill, nil)
	case "broadcast":
		payment.SetTestHooks(p, nil, kill)
	}
	if _, err := p.RunOnce(ctx, false); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// runChild runs one payout run in a child process (TestMain) that SIGKILLs
// itself at point ("commit" or "broadcast"), against the Redis named in
// redisEnv (LODE_TEST_REDIS=addr, LODE_TEST_SENTINELS=addr,addr,... or
// LODE_TEST_CLUSTER=addr,addr,...).
func (e *env) runChild(point, redisEnv string) {
	e.t.Helper()
	wif, _ := btcutil.NewWIF(e.key, e.params, true)
	user, pass, cookie := e.chain.RPCAuth()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LODE_PAYMENT_CHILD="+point, "LODE_TEST_WIF="+wif.String(), redisEnv,
		"LODE_TEST_NODE_URL="+e.chain.RPCURL(), "LODE_TEST_NODE_USER="+user,
		"LODE_TEST_NODE_PASS="+pass, "LODE_TEST_NODE_COOKIE="+cookie, "LODE_TEST_POOL="+e.pool.EncodeAddress())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		e.t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
}

func TestCrashExactlyOnce(t *testing.T) { forEachNode(t, testCrashExactlyOnce) }

func testCrashExactlyOnce(t *testing.T, nodeKind string) {
	for _, point := range []string{"commit", "broadcast"} {
		t.Run("kill after "+point, func(t *testing.T) {
			e := newEnv(t, nodeKind, p2pkh, 2)
			ctx := context.Background()
			want := map[string]int64{}
			for i := 0; i < 5; i++ {
				want[recipient(t, i, e.params)] = int64(3_000_000 + i*1_000_001)
			}
			e.seed(want)
			e.runChild(point, "LODE_TEST_REDIS="+e.redis.Addr)
			open, err := e.store.OpenPayouts(ctx)
			if err != nil || len(open) != 1 || open[0].State != payment.StatePending {
				t.Fatalf("after the kill: open %+v, %v; want one pending payout", open, err)
			}
			st, err := e.node.TxStatus(ctx, mustHash(t, open[0].TxID))
			if err != nil || st.Found != (point == "broadcast") {
				t.Fatalf("killed after %s: node knows the tx = %v (%v)", point, st.Found, err)
			}
			e.checkLedger()

			// Restart: the pending payout is resolved with the same tx, the
			// second batch is paid normally.
			p := e.processor(e.config(payment.ModeHot))
			res, err := p.RunOnce(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Resolved) != 1 || res.Resolved[0].TxID != open[0].TxID || res.Resolved[0].State != payment.StateBroadcast {
				t.Fatalf("resolved %+v", res.Resolved)
			}
			if len(res.Payouts) != 1 || len(res.Payouts[0].Outputs) != 2 {
				t.Fatalf("restart paid %d new payouts, want the one batch the child never reached", len(res.Payouts))
			}
			// Once more for good measure: nothing new.
			if res, err := p.RunOnce(ctx, false); err != nil || len(res.Payouts) != 0 {
				t.Fatalf("third run: %v, %d payouts", err, len(res.Payouts))
			}
			e.chain.Generate(1)
			if res, err := p.RunOnce(ctx, false); err != nil || res.Open != 0 {
				t.Fatalf("after a block: %v, open %d", err, res.Open)
			}
			got := e.received()
			for a, v := range want {
				if got[a] != v {
					t.Errorf("%s received %d, want %d", a, got[a], v)
				}
			}
			tot := e.checkLedger()
			if bal, _ := e.store.Balances(ctx); len(bal) != 0 {
				t.Fatalf("balances left: %v", bal)
			}
			var paid int64
			for _, v := range want {
				paid += v
			}
			if tot.Paid != paid || tot.Payouts != 2 {
				t.Fatalf("totals %+v, want paid %d in 2 payouts", tot, paid)
			}
		})
	}
}

// TestRefusesWithoutTxIndex: on a node without a transaction index a
// confirmed payout would look never mined (and abandoning it would pay
// twice), so the processor neither pays nor abandons; nothing changes.
func TestRefusesWithoutTxIndex(t *testing.T) { forEachNode(t, testRefusesWithoutTxIndex) }

func testRefusesWithoutTxIndex(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 1, testenv.NoTxIndex)
	ctx := context.Background()
	e.seed(map[string]int64{recipient(t, 1, e.params): 5_000_000})
	before := e.ledgerSnapshot()
	p := e.processor(e.config(payment.ModeHot))
	res, err := p.RunOnce(ctx, false)
	if !errors.Is(err, bitcoind.ErrNoTxIndex) || len(res.Payouts) != 0 {
		t.Fatalf("run: %v, %d payouts; want ErrNoTxIndex and none", err, len(res.Payouts))
	}
	if _, _, err := p.Abandon(ctx, 1); !errors.Is(err, bitcoind.ErrNoTxIndex) {
		t.Fatalf("abandon: %v, want ErrNoTxIndex", err)
	}
	if got := e.ledgerSnapshot(); got != before {
		t.Fatalf("ledger changed:\n%s\n%s", before, got)
	}
}
