//go:build e2e

package main

// End-to-end money checks through the real pool (issues 4 and 5): test
// miners mine through lode on btcd regtest, every credited block is audited
// against its PPLNS snapshot and the chain, payouts are found on chain to the
// satoshi, and a SIGKILLed pool process loses no share a miner saw accepted.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/shares/ledger"
)

// moneyMiner is a test miner that reconnects whenever its connection ends
// and keeps, across connections, what the pool told it: the shares it saw
// accepted (count and Σ target difficulty in ledger units) and the shares
// whose verdict it never received because the connection died (in doubt:
// the pool may or may not have recorded them). With several pool URLs it
// fails over as miners' firmware does: after a lost connection it tries the
// same URL, and moves to the next one while a URL refuses connections.
type moneyMiner struct {
	cfg        miner.Config  // Address: the URL in use
	urls       []string      // the pool URLs, in order of preference
	difficulty float64       // the port's fixed difficulty; no share is mined at another
	pause      time.Duration // sleep after each submit: a lower hashrate

	mu            sync.Mutex
	accepted      int64
	acceptedUnits *big.Int
	rejected      int64
	doubt         int64
	doubtUnits    *big.Int
	sessions      int
	lastErr       error
}

// The 15 s reply timeout is above the pool's longest stall (a process that
// starts with Redis down spends up to two store timeouts of 2 s before it
// spools), so only a killed connection leaves a share in doubt.
func newMoneyMiner(addr, user string, difficulty float64, pause time.Duration) *moneyMiner {
	return newFailoverMiner([]string{addr}, user, difficulty, pause)
}

// newFailoverMiner is a moneyMiner with a list of pool URLs.
func newFailoverMiner(urls []string, user string, difficulty float64, pause time.Duration) *moneyMiner {
	return &moneyMiner{
		cfg:  miner.Config{Username: user, Password: "x", Timeout: 15 * time.Second},
		urls: urls, difficulty: difficulty, pause: pause,
		acceptedUnits: new(big.Int), doubtUnits: new(big.Int),
	}
}

// snapshot returns the counters.
func (mm *moneyMiner) snapshot() (accepted int64, units *big.Int, doubt int64, doubtUnits *big.Int) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return mm.accepted, new(big.Int).Set(mm.acceptedUnits), mm.doubt, new(big.Int).Set(mm.doubtUnits)
}

func (mm *moneyMiner) String() string {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return fmt.Sprintf("%s: accepted %d (%s units), rejected %d, in doubt %d (%s units), %d sessions, last error %v",
		mm.cfg.Username, mm.accepted, mm.acceptedUnits, mm.rejected, mm.doubt, mm.doubtUnits, mm.sessions, mm.lastErr)
}

// run mines until ctx ends, reconnecting (every 100 ms, to the next URL)
// while the pool is down. The extranonce2 counter keeps counting across
// connections so a restarted pool is not sent the same header again.
func (mm *moneyMiner) run(ctx context.Context) {
	var en2 uint64
	units := ledger.DiffToUnits(mm.difficulty)
	cfg, cur := mm.cfg, 0
	for ctx.Err() == nil {
		cfg.Address = mm.urls[cur]
		m, err := miner.Dial(ctx, cfg)
		if err != nil {
			mm.mu.Lock()
			mm.lastErr = err
			mm.mu.Unlock()
			cur = (cur + 1) % len(mm.urls)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		mm.mu.Lock()
		mm.sessions++
		mm.mu.Unlock()
		for ctx.Err() == nil {
			// The pool sends the port's difficulty right after authorize; until
			// then the miner would work at difficulty 1.
			if m.CurrentJob() == nil || m.Difficulty() != mm.difficulty {
				select {
				case <-m.Done():
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
				if m.Err() != nil {
					break
				}
				continue
			}
			en2++
			sh, err := m.Mine(ctx, en2)
			if err != nil {
				break
			}
			if sh == nil {
				continue
			}
			// A submit in flight when ctx ends still waits for its verdict
			// (bounded by the miner's timeout): only a dead connection
			// leaves a share in doubt.
			r, err := m.Submit(context.WithoutCancel(ctx), sh)
			mm.mu.Lock()
			switch {
			case err != nil:
				mm.doubt++
				mm.doubtUnits.Add(mm.doubtUnits, units)
				mm.lastErr = err
			case r.OK():
				mm.accepted++
				mm.acceptedUnits.Add(mm.acceptedUnits, units)
			default:
				mm.rejected++
			}
			mm.mu.Unlock()
			if err != nil {
				break
			}
			if mm.pause > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(mm.pause):
				}
			}
		}
		m.Close()
	}
}

// startMiners runs miners until the returned stop is called; stop waits for
// them to end.
func startMiners(miners ...*moneyMiner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, mm := range miners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mm.run(ctx)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// waitUntil polls cond until it holds or limit passes (a bounded wait, not a
// timing assertion: the limit only stops a broken run).
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, limit, what, cond)
}

// waitListening waits until addr accepts TCP connections or exited reports
// that the process ended.
func waitListening(t *testing.T, addr string, limit time.Duration, exited func() bool) {
	t.Helper()
	waitUntil(t, "stratum listening on "+addr, limit, func() bool {
		if exited() {
			t.Fatal("lode exited before listening")
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func connectStore(t *testing.T, addr, prefix string) *redisstore.Store {
	t.Helper()
	store, err := redisstore.Connect(context.Background(), redisstore.ConnectConfig{Addr: addr, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Client().Close() })
	return store
}

// poolScriptValue returns the value the coinbase of block hash pays to
// script at the recorded outpoint, checking that the outpoint really is that
// block's coinbase output to the pool.
func poolScriptValue(t *testing.T, rpc *rpcclient.Client, b payouts.Block, script []byte) int64 {
	t.Helper()
	blk, err := rpc.GetBlock(&b.Hash)
	if err != nil {
		t.Fatalf("getblock %s: %v", b.Hash, err)
	}
	cb := blk.Transactions[0]
	if cb.TxHash() != b.CoinbaseOutpoint.Hash || int(b.CoinbaseOutpoint.Index) >= len(cb.TxOut) {
		t.Fatalf("block %s: recorded coinbase outpoint %v is not its coinbase %s", b.Hash, b.CoinbaseOutpoint, cb.TxHash())
	}
	out := cb.TxOut[b.CoinbaseOutpoint.Index]
	if !bytes.Equal(out.PkScript, script) {
		t.Fatalf("block %s: coinbase output %d does not pay the pool", b.Hash, b.CoinbaseOutpoint.Index)
	}
	var toPool int64
	for _, o := range cb.TxOut {
		if bytes.Equal(o.PkScript, script) {
			toPool += o.Value
		}
	}
	if toPool != out.Value {
		t.Fatalf("block %s: the pool is paid %d by its coinbase, %d at the recorded output", b.Hash, toPool, out.Value)
	}
	return toPool
}

// TestMoneyEndToEnd is issue 4's "regtest end to end" and issue 5's "end to
// end": two test miners with different hashrates (a faster one at a higher
// fixed difficulty, a throttled one at a lower) mine through lode until the
// pool has found blocks; the node mines 100 more; every block the unlocker
// credits is audited against its PPLNS snapshot (payouts.AuditCredit) and
// against the chain (reward = the coinbase output paying the pool); the
// payout processor then pays, and each miner's address holds on chain
// exactly what its payouts say, which is exactly its credits minus its
// remaining balance; Σ balances + paid + network fees + fee account = Σ
// matured rewards, to the satoshi.
func TestMoneyEndToEnd(t *testing.T) {
	node := testenv.StartBtcd(t)
	node.Generate(1) // btcd serves templates once it has a block past genesis
	rs := testenv.StartRedis(t)
	dir := t.TempDir()
	portA := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	portB := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	wif, err := btcutil.NewWIF(node.Key, node.Params, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LODE_TEST_PAYOUT_KEY", wif.String())
	const (
		diffA, diffB = 0.0001, 0.00005
		feeBP        = 150 // fee_percent 1.5
		threshold    = 10000
	)
	// The window floor (0.003 difficulty, some 15 to 30 shares) is small
	// enough that snapshots cut the oldest share in part, large enough that
	// both miners are usually in it.
	cfg := fmt.Sprintf(`roles: [stratum, unlocker, payouts]
`+regtestNodeYAML(t, node, rs.Addr, "money", "")+`pool:
  payout_address: %s
  fee_percent: 1.5
  pplns_min_window: 0.003
stratum:
  ports:
    - {listen: "%s", start_difficulty: %v, min_difficulty: %v, max_difficulty: %v}
    - {listen: "%s", start_difficulty: %v, min_difficulty: %v, max_difficulty: %v}
ledger: {spool_dir: %s}
unlocker: {interval: 300ms, maturity: 100}
payouts:
  interval: 500ms
  threshold: %d
  signing: hot
  key: {env: LODE_TEST_PAYOUT_KEY}
  fee_payer: miners
shutdown_timeout: 20s
`, node.Address.EncodeAddress(),
		portA, diffA, diffA, diffA, portB, diffB, diffB, diffB, filepath.Join(dir, "spool"), threshold)
	path := filepath.Join(dir, "lode.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, []string{"-config", path}, nil, io.Discard, logs) }()
	exitCode := -1
	exited := func() bool {
		if exitCode >= 0 {
			return true
		}
		select {
		case exitCode = <-done:
			return true
		default:
			return false
		}
	}
	t.Cleanup(func() {
		cancel()
		if !exited() {
			select {
			case exitCode = <-done:
			case <-time.After(40 * time.Second):
				t.Error("lode did not stop within 40 s of cancel")
			}
		}
		if t.Failed() {
			t.Logf("lode log:\n%s", logs.String())
		}
	})
	waitListening(t, portA, 30*time.Second, exited)

	store := connectStore(t, rs.Addr, "money")
	rpc := node.Client()
	bg := context.Background()

	// A mines flat out; B, at half A's share difficulty, pauses after each
	// share: different hashrates, different contributions.
	mA := newMoneyMiner(portA, minerA+".fast", diffA, 0)
	mB := newMoneyMiner(portB, minerB+".slow", diffB, 300*time.Millisecond)
	stopMiners := startMiners(mA, mB)
	minerStopped := false
	defer func() {
		if !minerStopped {
			stopMiners()
		}
	}()
	// On regtest every share is a block: the pool finds blocks from the
	// first share on.
	waitUntil(t, "shares from both miners and pool blocks", 90*time.Second, func() bool {
		a, _, _, _ := mA.snapshot()
		b, _, _, _ := mB.snapshot()
		blocks, err := store.Blocks(bg, 1000)
		return err == nil && a >= 6 && b >= 4 && len(blocks) >= 6
	})
	stopMiners()
	minerStopped = true
	t.Logf("%v\n%v", mA, mB)

	// Let the last found blocks be recorded before the node buries them: the
	// count stays the same for a second. (A block off the main chain stays
	// pending until it is deep enough to orphan, so pending is no signal.)
	lastCount, same := -1, 0
	waitUntil(t, "the found blocks recorded", 30*time.Second, func() bool {
		blocks, err := store.Blocks(bg, 1000)
		if err != nil {
			return false
		}
		if len(blocks) == lastCount {
			same++
		} else {
			lastCount, same = len(blocks), 0
		}
		return same >= 10
	})
	node.Generate(100)

	var blocks []payouts.Block
	waitUntil(t, "every pool block credited or orphaned", 60*time.Second, func() bool {
		blocks, err = store.Blocks(bg, 1000)
		if err != nil {
			return false
		}
		for _, b := range blocks {
			if !b.Status.Final() {
				return false
			}
		}
		return true
	})

	script, err := txscript.PayToAddrScript(node.Address)
	if err != nil {
		t.Fatal(err)
	}
	maxUnits := map[string]*big.Int{}
	for addr, mm := range map[string]*moneyMiner{minerA: mA, minerB: mB} {
		_, u, _, du := mm.snapshot()
		maxUnits[addr] = u.Add(u, du)
	}
	credits, rewards, credited := auditCredits(t, store, rpc, script, blocks, feeBP, maxUnits)
	if again, err := store.Blocks(bg, 1000); err != nil || len(again) != len(blocks) {
		t.Fatalf("blocks recorded after the chain was extended: %d, then %d (%v)", len(blocks), len(again), err)
	}
	if credits[minerA] == 0 || credits[minerB] == 0 || len(credits) != 2 {
		t.Fatalf("credits %v: want both miners and nobody else", credits)
	}
	t.Logf("%d blocks, %d credited; credits %v; Σ rewards %d", len(blocks), credited, credits, rewards)

	// Issue 5: the processor pays; blocks from the node confirm its payouts.
	waitPaid(t, store, rpc, threshold, 90*time.Second)
	auditPayouts(t, store, rpc, node, script, credits, rewards, minerA, minerB)

	cancel()
	if !exited() {
		select {
		case exitCode = <-done:
		case <-time.After(40 * time.Second):
			t.Fatal("lode did not stop within 40 s of cancel")
		}
	}
	if exitCode != 0 {
		t.Fatalf("lode exited with %d", exitCode)
	}
}

// auditCredits checks every credited block of blocks (issue 4): its credits
// are exactly what its PPLNS snapshot implies (payouts.AuditCredit), its
// reward is exactly the coinbase output paying the pool on chain, its fee
// is feeBP of it, and no snapshot gives an address more difficulty units
// than maxUnits (what its miners got accepted). Orphans credit nobody. It
// returns Σ credits per address, Σ matured rewards and the number of
// credited blocks.
func auditCredits(t *testing.T, store *redisstore.Store, rpc *rpcclient.Client, script []byte, blocks []payouts.Block,
	feeBP int64, maxUnits map[string]*big.Int) (credits map[string]int64, rewards int64, credited int) {
	t.Helper()
	bg := context.Background()
	credits = map[string]int64{}
	for _, b := range blocks {
		if b.Status != payouts.StatusCredited {
			if c, err := store.BlockCredits(bg, b.Hash); err != nil || len(c) != 0 {
				t.Errorf("%s block %s: credits %v %v", b.Status, b.Hash, c, err)
			}
			continue
		}
		credited++
		contrib, err := store.Contributions(bg, b.Hash)
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.BlockCredits(bg, b.Hash)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range contrib {
			if lim, ok := maxUnits[c.Address]; !ok || c.Units.Cmp(lim) > 0 {
				t.Errorf("block %s: snapshot gives %s %s units, its miners had %v accepted", b.Hash, c.Address, c.Units, lim)
			}
		}
		if err := payouts.AuditCredit(b, contrib, got); err != nil {
			t.Errorf("audit: %v (contributions %v, credits %v)", err, contrib, got)
		}
		onChain := poolScriptValue(t, rpc, b, script)
		if b.Reward != onChain || b.CoinbaseValue != onChain {
			t.Errorf("block %s at %d: reward %d, template coinbase value %d, chain pays the pool %d",
				b.Hash, b.Height, b.Reward, b.CoinbaseValue, onChain)
		}
		if want := b.Reward * feeBP / payouts.MaxFeeBasisPoints; b.Fee != want {
			t.Errorf("block %s: fee %d, want %d (%d bp of %d)", b.Hash, b.Fee, want, feeBP, b.Reward)
		}
		var sum int64
		for addr, v := range got {
			if v <= 0 {
				t.Errorf("block %s: %s credited %d", b.Hash, addr, v)
			}
			credits[addr] += v
			sum += v
		}
		if sum+b.Fee != onChain {
			t.Errorf("block %s: Σ credits %d + fee %d != coinbase value to the pool %d", b.Hash, sum, b.Fee, onChain)
		}
		rewards += b.Reward
	}
	return credits, rewards, credited
}

// waitPaid waits until no payout is open and no balance reaches the
// threshold, mining a block whenever a payout waits for its confirmation.
func waitPaid(t *testing.T, store *redisstore.Store, rpc *rpcclient.Client, threshold int64, limit time.Duration) {
	t.Helper()
	bg := context.Background()
	waitUntil(t, "every balance above the threshold paid and confirmed", limit, func() bool {
		open, err := store.OpenPayouts(bg)
		if err != nil {
			return false
		}
		if len(open) > 0 {
			if _, err := rpc.Generate(1); err != nil {
				t.Logf("generate: %v", err)
			}
			return false
		}
		bal, err := store.Balances(bg)
		if err != nil {
			return false
		}
		for _, v := range bal {
			if v >= threshold {
				return false
			}
		}
		tot, err := store.Totals(bg)
		return err == nil && tot.Payouts > 0
	})
}

// auditPayouts checks the payouts (issue 5) once none is open: Σ balances +
// paid + network fees + fee account = rewards; every payout is confirmed,
// its outputs unspent on chain at the recorded amounts, its fee the
// transaction's real fee (miners pay it); each of addrs holds on chain
// exactly what its payouts paid, which is its credits minus its balance and
// fee shares; the pool's recorded UTXOs are on chain and hold exactly Σ
// balances + fee account.
func auditPayouts(t *testing.T, store *redisstore.Store, rpc *rpcclient.Client, node *testenv.Btcd, script []byte,
	credits map[string]int64, rewards int64, addrs ...string) {
	t.Helper()
	bg := context.Background()
	bal, err := store.Balances(bg)
	if err != nil {
		t.Fatal(err)
	}
	feeAcct, err := store.FeeBalance(bg)
	if err != nil {
		t.Fatal(err)
	}
	tot, err := store.Totals(bg)
	if err != nil {
		t.Fatal(err)
	}
	var sumBal int64
	for addr, v := range bal {
		if v < 0 {
			t.Errorf("negative balance %s: %d", addr, v)
		}
		sumBal += v
	}
	if got := sumBal + tot.Paid + tot.Fees + feeAcct; got != rewards {
		t.Errorf("Σ balances %d + paid %d + network fees %d + fee account %d = %d, want Σ matured rewards %d",
			sumBal, tot.Paid, tot.Fees, feeAcct, got, rewards)
	}

	// Each payout's outputs are on chain, unspent, at the recorded amounts.
	pays, err := store.Payouts(bg, 1000)
	if err != nil {
		t.Fatal(err)
	}
	debited := map[string]int64{}
	paid := map[string]int64{}
	var paidSum, feeSum int64
	for _, p := range pays {
		if p.State != payment.StateConfirmed {
			t.Errorf("payout %d is %s", p.ID, p.State)
			continue
		}
		txid, err := chainhash.NewHashFromStr(p.TxID)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := rpc.GetRawTransactionVerbose(txid)
		if err != nil {
			t.Fatalf("getrawtransaction %s: %v", p.TxID, err)
		}
		if raw.Confirmations < 1 {
			t.Errorf("payout %d tx %s: %d confirmations", p.ID, p.TxID, raw.Confirmations)
		}
		tx, err := rpc.GetRawTransaction(txid)
		if err != nil {
			t.Fatalf("getrawtransaction %s: %v", p.TxID, err)
		}
		onChain := map[string]int64{}
		for i, o := range tx.MsgTx().TxOut {
			_, as, _, _ := txscript.ExtractPkScriptAddrs(o.PkScript, node.Params)
			if len(as) != 1 {
				continue
			}
			onChain[as[0].EncodeAddress()] += o.Value
			if bytes.Equal(o.PkScript, script) {
				continue // change: the pool may spend it again (checked with the pool's UTXOs below)
			}
			// Nobody holds the miners' keys: their outputs stay unspent.
			out, err := rpc.GetTxOut(txid, uint32(i), false)
			if err != nil || out == nil {
				t.Errorf("gettxout %s:%d: %v %v (spent or missing)", p.TxID, i, out, err)
			} else if v := btcAmount(t, out.Value); v != o.Value {
				t.Errorf("gettxout %s:%d: %d, the tx says %d", p.TxID, i, v, o.Value)
			}
		}
		var outSum, debitSum int64
		for _, o := range p.Outputs {
			debited[o.Address] += o.Debit
			paid[o.Address] += o.Amount
			outSum += o.Amount
			debitSum += o.Debit
			if onChain[o.Address] != o.Amount {
				t.Errorf("payout %d: %s gets %d on chain, the record says %d", p.ID, o.Address, onChain[o.Address], o.Amount)
			}
		}
		// The miners pay the fee: their debits are what they got plus the
		// fee, and the fee is what the transaction really leaves to miners
		// of the chain (inputs − outputs).
		if debitSum != outSum+p.Fee || p.FeeAccountDebit != 0 {
			t.Errorf("payout %d: debits %d != paid %d + fee %d (fee account debit %d)", p.ID, debitSum, outSum, p.Fee, p.FeeAccountDebit)
		}
		var in, out int64
		for _, ti := range tx.MsgTx().TxIn {
			prev, err := rpc.GetRawTransaction(&ti.PreviousOutPoint.Hash)
			if err != nil {
				t.Fatalf("getrawtransaction %s: %v", ti.PreviousOutPoint.Hash, err)
			}
			in += prev.MsgTx().TxOut[ti.PreviousOutPoint.Index].Value
		}
		for _, o := range tx.MsgTx().TxOut {
			out += o.Value
		}
		if in-out != p.Fee {
			t.Errorf("payout %d: the transaction's fee is %d, the record says %d", p.ID, in-out, p.Fee)
		}
		if p.ChangeVout >= 0 && (p.ChangeVout >= len(tx.MsgTx().TxOut) || tx.MsgTx().TxOut[p.ChangeVout].Value != p.ChangeValue ||
			!bytes.Equal(tx.MsgTx().TxOut[p.ChangeVout].PkScript, script)) {
			t.Errorf("payout %d: change output %d does not pay the pool %d", p.ID, p.ChangeVout, p.ChangeValue)
		}
		paidSum += outSum
		feeSum += p.Fee
	}
	if paidSum != tot.Paid || feeSum != tot.Fees || int64(len(pays)) != tot.Payouts {
		t.Errorf("payout records: paid %d fees %d count %d; totals %+v", paidSum, feeSum, len(pays), tot)
	}
	// Every satoshi a miner's address holds on chain came from a payout.
	received := addressReceipts(t, rpc, node.Params, node.Height(), addrs...)
	for _, addr := range addrs {
		if paid[addr] == 0 {
			t.Errorf("%s was never paid (credits %d, balance %d)", addr, credits[addr], bal[addr])
		}
		if received[addr] != paid[addr] {
			t.Errorf("%s holds %d on chain, its payouts paid %d", addr, received[addr], paid[addr])
		}
		if credits[addr] != bal[addr]+debited[addr] {
			t.Errorf("%s: credits %d != balance %d + debits %d", addr, credits[addr], bal[addr], debited[addr])
		}
	}
	// What the pool still owes is exactly what it still holds.
	utxos, err := store.UTXOs(bg)
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	for _, u := range utxos {
		out, err := rpc.GetTxOut(&u.OutPoint.Hash, u.OutPoint.Index, false)
		if err != nil || out == nil {
			t.Errorf("pool utxo %v: %v %v (spent or missing)", u.OutPoint, out, err)
		} else if v := btcAmount(t, out.Value); v != u.Value {
			t.Errorf("pool utxo %v: %d on chain, %d recorded", u.OutPoint, v, u.Value)
		}
		held += u.Value
	}
	if held != sumBal+feeAcct {
		t.Errorf("pool utxos %d != Σ balances %d + fee account %d", held, sumBal, feeAcct)
	}
	t.Logf("paid %v (fees %d), balances %v, fee account %d", paid, tot.Fees, bal, feeAcct)
}

// btcAmount converts an RPC BTC float to satoshis.
func btcAmount(t *testing.T, v float64) int64 {
	t.Helper()
	a, err := btcutil.NewAmount(v)
	if err != nil {
		t.Fatal(err)
	}
	return int64(a)
}

// addressReceipts sums, over the whole chain, the outputs paying each of
// addrs.
func addressReceipts(t *testing.T, rpc *rpcclient.Client, params *chaincfg.Params, tip int64, addrs ...string) map[string]int64 {
	t.Helper()
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	got := map[string]int64{}
	for h := int64(1); h <= tip; h++ {
		hash, err := rpc.GetBlockHash(h)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := rpc.GetBlock(hash)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range blk.Transactions {
			for _, o := range tx.TxOut {
				_, as, _, _ := txscript.ExtractPkScriptAddrs(o.PkScript, params)
				if len(as) == 1 && want[as[0].EncodeAddress()] {
					got[as[0].EncodeAddress()] += o.Value
				}
			}
		}
	}
	return got
}

// TestMoneyCrashKeepsAcceptedShares is issue 4's crash test: the pool
// process (the built binary, stratum role) is SIGKILLed twice while test
// miners submit as fast as they can, and restarted on the same config and
// spool directory; the miners reconnect. In the end every share a miner saw
// accepted is in the ledger: the Σ difficulty its address has in the PPLNS
// window equals what the miner saw, up to the shares whose verdict the
// miner never received because the kill cut the connection (in doubt:
// recorded or not, both are correct). The statistics (the worker's accepted
// counter) are written once per ledger.stats_interval (1 s, the default):
// a kill may take the last interval's statistics, never more, and they
// never count a share the miner did not send.
func TestMoneyCrashKeepsAcceptedShares(t *testing.T) {
	lb := buildLode(t)
	node := testenv.StartBtcd(t)
	node.Generate(1)
	rs := testenv.StartRedis(t)
	dir := t.TempDir()
	port := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	const diff = 0.00002
	// A window floor far above what the test mines: nothing is trimmed, so
	// the window holds every recorded share.
	cfg := fmt.Sprintf(`roles: [stratum]
`+regtestNodeYAML(t, node, rs.Addr, "crash", "")+`pool: {payout_address: %s, pplns_min_window: 1000000}
stratum:
  ports:
    - {listen: "%s", start_difficulty: %v, min_difficulty: %v, max_difficulty: %v}
ledger: {spool_dir: %s}
shutdown_timeout: 20s
`, node.Address.EncodeAddress(), port, diff, diff, diff, filepath.Join(dir, "spool"))
	path := filepath.Join(dir, "lode.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	lb.env = append(lb.env, "LODE_TEST_NODE_PASSWORD="+node.Pass)
	var cur *lodeProc
	t.Cleanup(func() {
		if cur != nil {
			cur.kill(t)
		}
	})
	start := func() *lodeProc { return lb.start(t, path, port) }

	cur = start()
	// Four connections, two payout addresses: the window is per address,
	// the accepted counters per worker.
	miners := []*moneyMiner{
		newMoneyMiner(port, minerA+".rig1", diff, 0),
		newMoneyMiner(port, minerA+".rig2", diff, 0),
		newMoneyMiner(port, minerB+".rig1", diff, 0),
		newMoneyMiner(port, minerB, diff, 0),
	}
	// A kill loses the statistics of at most the shares made durable in the
	// last statistics interval before it. Each kill comes statsLossWindow (a
	// few intervals, for a loaded machine) after a snapshot of every miner's
	// accepted count, so the shares accepted in between bound that loss.
	const statsLossWindow = 3 * time.Second
	statsMayLose := make([]int64, len(miners))
	kill := func(p *lodeProc) {
		t.Helper()
		before := make([]int64, len(miners))
		for i, mm := range miners {
			before[i], _, _, _ = mm.snapshot()
		}
		time.Sleep(statsLossWindow)
		p.kill(t)
		for i, mm := range miners {
			a, _, _, _ := mm.snapshot()
			statsMayLose[i] += a - before[i]
		}
	}
	stopMiners := startMiners(miners...)
	stopped := false
	defer func() {
		if !stopped {
			stopMiners()
		}
	}()
	total := func() int64 {
		var n int64
		for _, mm := range miners {
			a, _, _, _ := mm.snapshot()
			n += a
		}
		return n
	}
	mine := func(n int64, what string) {
		t.Helper()
		target := total() + n
		waitUntil(t, fmt.Sprintf("%d accepted shares %s", target, what), 60*time.Second, func() bool {
			return total() >= target
		})
	}
	// Two kills with Redis up: what was acknowledged is in Redis.
	for round := 1; round <= 2; round++ {
		mine(40, fmt.Sprintf("before kill %d", round))
		kill(cur)
		cur = start()
	}
	// A kill while Redis is down: what was acknowledged is only in the
	// spool; the next process (started while Redis is still down) appends
	// to the same spool and replays all of it once Redis is back.
	spoolPath := filepath.Join(dir, "spool", "shares.spool")
	spoolSize := func() int64 {
		fi, err := os.Stat(spoolPath)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	rs.Stop()
	mine(30, "with Redis down")
	kill(cur)
	if spoolSize() == 0 {
		t.Fatal("shares were accepted with Redis down, but the spool is empty")
	}
	cur = start()
	mine(15, "with Redis down after the restart")
	rs.Restart()
	mine(30, "after Redis came back")
	// Every reply a miner waits for arrives before stop returns (or the
	// share is in doubt); the ledger acknowledged each accepted one.
	stopMiners()
	stopped = true
	waitUntil(t, "the spool replayed", 60*time.Second, func() bool { return spoolSize() == 0 })

	store := connectStore(t, rs.Addr, "crash")
	bg := context.Background()
	inWindow := windowUnits(t, store)
	seen := map[string][2]*big.Int{} // address → Σ units seen accepted, Σ units in doubt
	for i, mm := range miners {
		acc, units, doubt, doubtUnits := mm.snapshot()
		// The running process writes the last shares' statistics within
		// an interval.
		var ws ledger.WorkerStats
		waitUntil(t, fmt.Sprintf("%s: statistics of at least %d of the %d accepted shares (a kill may lose %d)",
			mm.cfg.Username, acc-statsMayLose[i], acc, statsMayLose[i]), 30*time.Second, func() bool {
			var err error
			ws, err = store.WorkerStats(bg, mm.cfg.Username, time.Now())
			return err == nil && ws.Accepted >= acc-statsMayLose[i]
		})
		t.Logf("%v; statistics: %d accepted (kills may lose %d)", mm, ws.Accepted, statsMayLose[i])
		if mm.sessions < 4 {
			t.Errorf("%s: %d sessions, want one per process run (4)", mm.cfg.Username, mm.sessions)
		}
		if acc == 0 {
			t.Errorf("%s: no accepted share", mm.cfg.Username)
		}
		if ws.Accepted > acc+doubt {
			t.Errorf("%s: the statistics count %d accepted shares, the miner saw %d accepted and %d in doubt",
				mm.cfg.Username, ws.Accepted, acc, doubt)
		}
		addr, _, _ := strings.Cut(mm.cfg.Username, ".")
		if seen[addr][0] == nil {
			seen[addr] = [2]*big.Int{new(big.Int), new(big.Int)}
		}
		seen[addr][0].Add(seen[addr][0], units)
		seen[addr][1].Add(seen[addr][1], doubtUnits)
	}
	for addr, v := range seen {
		got := inWindow[addr]
		if got == nil {
			got = new(big.Int)
		}
		t.Logf("%s: Σ units seen accepted %s, in doubt %s; in the ledger's window %s", addr, v[0], v[1], got)
		if hi := new(big.Int).Add(v[0], v[1]); got.Cmp(v[0]) < 0 || got.Cmp(hi) > 0 {
			t.Errorf("%s: Σ difficulty units in the ledger %s, its miners saw %s accepted and %s in doubt",
				addr, got, v[0], v[1])
		}
	}
	if len(inWindow) != len(seen) {
		t.Errorf("window addresses %v, want the miners' %d", inWindow, len(seen))
	}
}

// lodeBinary is the lode command built for a test, run as child processes
// whose output is collected (and logged when the test fails).
type lodeBinary struct {
	path string
	env  []string // added to the environment
	mu   sync.Mutex
	logs bytes.Buffer
}

func buildLode(t *testing.T) *lodeBinary {
	t.Helper()
	lb := &lodeBinary{path: filepath.Join(t.TempDir(), "lode")}
	build := exec.Command("go", "build", "-o", lb.path, "./cmd/lode")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			lb.mu.Lock()
			t.Logf("lode output:\n%s", lb.logs.String())
			lb.mu.Unlock()
		}
	})
	return lb
}

// lodeProc is one running lode process.
type lodeProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs lode with the config at path; with waitAddr set it returns once
// that address accepts connections.
func (lb *lodeBinary) start(t *testing.T, path, waitAddr string) *lodeProc {
	t.Helper()
	cmd := exec.Command(lb.path, "-config", path)
	cmd.Env = append(os.Environ(), lb.env...)
	w := &lockedWriter{mu: &lb.mu, w: &lb.logs}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &lodeProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if waitAddr != "" {
		waitListening(t, waitAddr, 30*time.Second, p.exited)
	}
	return p
}

func (p *lodeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process and reaps it.
func (p *lodeProc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("lode did not die within 30 s of SIGKILL")
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *lodeProc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		p.kill(t)
		t.Fatal("lode did not stop within 40 s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// lockedWriter serializes writes of several processes into one buffer.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestMoneyKillsDuringUnlockAndPayout SIGKILLs the process running the
// unlocker and payouts roles again and again, each time right after it was
// seen changing the books (a block credited, a payout committed, broadcast
// or confirmed), so the kills land between the steps of crediting and
// paying; each successor takes the Redis leases over and goes on. In the
// end no block is credited twice or differently from its snapshot, no
// payout is paid twice or lost: the audits of TestMoneyEndToEnd hold to the
// satoshi (issue 4's "no block credited twice after kills", issue 5's "no
// double payment, no loss", through the real process).
func TestMoneyKillsDuringUnlockAndPayout(t *testing.T) {
	lb := buildLode(t)
	node := testenv.StartBtcd(t)
	node.Generate(1)
	rs := testenv.StartRedis(t)
	dir := t.TempDir()
	port := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	wif, err := btcutil.NewWIF(node.Key, node.Params, true)
	if err != nil {
		t.Fatal(err)
	}
	lb.env = append(lb.env, "LODE_TEST_NODE_PASSWORD="+node.Pass, "LODE_TEST_PAYOUT_KEY="+wif.String())
	const (
		diff      = 0.0001
		feeBP     = 200 // fee_percent 2
		threshold = 10000
	)
	// max_outputs 1: one payout per miner, more steps to kill between.
	common := fmt.Sprintf(regtestNodeYAML(t, node, rs.Addr, "kills", ", lease_ttl: 1s")+`pool: {payout_address: %s, fee_percent: 2, pplns_min_window: 0.002}
stratum:
  ports:
    - {listen: "%s", start_difficulty: %v, min_difficulty: %v, max_difficulty: %v}
ledger: {spool_dir: %s}
unlocker: {interval: 200ms, maturity: 100}
payouts:
  interval: 200ms
  threshold: %d
  max_outputs: 1
  signing: hot
  key: {env: LODE_TEST_PAYOUT_KEY}
  fee_payer: miners
shutdown_timeout: 20s
`, node.Address.EncodeAddress(), port, diff, diff, diff,
		filepath.Join(dir, "spool"), threshold)
	writeCfg := func(name, roles string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("roles: ["+roles+"]\n"+common), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	mineCfg, moneyCfg := writeCfg("mine.yaml", "stratum"), writeCfg("money.yaml", "unlocker, payouts")
	var cur *lodeProc
	t.Cleanup(func() {
		if cur != nil {
			cur.kill(t)
		}
	})

	// Mine pool blocks with two miners, one of them throttled.
	cur = lb.start(t, mineCfg, port)
	store := connectStore(t, rs.Addr, "kills")
	rpc := node.Client()
	bg := context.Background()
	mA := newMoneyMiner(port, minerA+".a", diff, 0)
	mB := newMoneyMiner(port, minerB+".b", diff, 200*time.Millisecond)
	stopMiners := startMiners(mA, mB)
	minersStopped := false
	defer func() {
		if !minersStopped {
			stopMiners()
		}
	}()
	waitUntil(t, "shares from both miners and pool blocks", 90*time.Second, func() bool {
		a, _, _, _ := mA.snapshot()
		b, _, _, _ := mB.snapshot()
		blocks, err := store.Blocks(bg, 1000)
		return err == nil && a >= 4 && b >= 4 && len(blocks) >= 10
	})
	stopMiners()
	minersStopped = true
	if code := cur.stop(t); code != 0 {
		t.Fatalf("mining process exited with %d", code)
	}
	cur = nil
	// Bury the pool blocks so that they mature one by one as the node
	// mines one more block per round: each round has a crediting to do.
	blocks, err := store.Blocks(bg, 1000)
	if err != nil {
		t.Fatal(err)
	}
	lowest := node.Height()
	for _, b := range blocks {
		lowest = min(lowest, b.Height)
	}
	if n := lowest + 99 - node.Height(); n > 0 {
		node.Generate(uint32(n)) // the lowest block has 100 confirmations
	}

	// fingerprint summarizes the books; a change means a step happened.
	fingerprint := func() (fp string, settled bool) {
		blocks, err := store.Blocks(bg, 1000)
		if err != nil {
			return "?", false
		}
		final := 0
		for _, b := range blocks {
			if b.Status.Final() {
				final++
			}
		}
		pays, err := store.Payouts(bg, 1000)
		if err != nil {
			return "?", false
		}
		fp = fmt.Sprint(final)
		open := 0
		for _, p := range pays {
			fp += fmt.Sprintf(" %d:%s", p.ID, p.State)
			if p.State.Open() {
				open++
			}
		}
		bal, err := store.Balances(bg)
		if err != nil {
			return "?", false
		}
		owed := false
		for _, v := range bal {
			owed = owed || v >= threshold
		}
		return fp, final == len(blocks) && open == 0 && !owed && len(pays) > 0
	}
	// startHolding starts the unlocker/payouts process and waits until it
	// holds the unlocker lease, so it is past its signal setup and working.
	startHolding := func() *lodeProc {
		before, _ := store.LeaseHolder(bg, RoleUnlocker)
		p := lb.start(t, moneyCfg, "")
		waitUntil(t, "the new process holding the unlocker lease", 30*time.Second, func() bool {
			if p.exited() {
				t.Fatal("the unlocker/payouts process exited by itself")
			}
			h, err := store.LeaseHolder(bg, RoleUnlocker)
			return err == nil && h != "" && h != before
		})
		return p
	}
	kills := 0
	for round := 0; round < 40; round++ {
		before, settled := fingerprint()
		if settled {
			break
		}
		cur = startHolding()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if fp, _ := fingerprint(); fp != before || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cur.kill(t)
		cur = nil
		kills++
		after, _ := fingerprint()
		t.Logf("kill %d: books %q -> %q", kills, before, after)
		// One more block: the next pool block matures, payouts confirm.
		if _, err := rpc.Generate(1); err != nil {
			t.Fatal(err)
		}
	}
	if kills < 5 {
		t.Errorf("only %d kills", kills)
	}

	// A last process finishes the work (if any is left) and stops cleanly.
	cur = startHolding()
	waitUntil(t, "every pool block credited or orphaned", 60*time.Second, func() bool {
		blocks, err = store.Blocks(bg, 1000)
		if err != nil {
			return false
		}
		for _, b := range blocks {
			if !b.Status.Final() {
				return false
			}
		}
		return true
	})
	waitPaid(t, store, rpc, threshold, 90*time.Second)
	if code := cur.stop(t); code != 0 {
		t.Fatalf("lode exited with %d", code)
	}
	cur = nil

	script, err := txscript.PayToAddrScript(node.Address)
	if err != nil {
		t.Fatal(err)
	}
	maxUnits := map[string]*big.Int{}
	for addr, mm := range map[string]*moneyMiner{minerA: mA, minerB: mB} {
		_, u, _, du := mm.snapshot()
		maxUnits[addr] = u.Add(u, du)
	}
	credits, rewards, credited := auditCredits(t, store, rpc, script, blocks, feeBP, maxUnits)
	if credited == 0 || credits[minerA] == 0 || credits[minerB] == 0 {
		t.Fatalf("%d blocks credited, credits %v", credited, credits)
	}
	t.Logf("%d blocks, %d credited, %d kills; credits %v; Σ rewards %d", len(blocks), credited, kills, credits, rewards)
	auditPayouts(t, store, rpc, node, script, credits, rewards, minerA, minerB)
}

// windowUnits returns Σ units per address of the PPLNS window.
func windowUnits(t *testing.T, store *redisstore.Store) map[string]*big.Int {
	t.Helper()
	win, err := store.Window(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inWindow := map[string]*big.Int{}
	for _, e := range win.Entries {
		u, err := ledger.ParseUnits(e.Units)
		if err != nil {
			t.Fatal(err)
		}
		if inWindow[e.Address] == nil {
			inWindow[e.Address] = new(big.Int)
		}
		inWindow[e.Address].Add(inWindow[e.Address], u)
	}
	return inWindow
}
