package payment_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts/payment"
)

// TestBroadcastFailureHaltsPayouts is issue 9's drained balances: while the
// node does not take a payout, no new payout may be committed (each one
// debits balances), and the same signed transaction is retried every run
// until the node takes it. Real failures:
//   - refused after a reorg: the node answers with a reason. The payout's
//     input, a coinbase, disappears in a reorg (invalidateblock) right after
//     the commit, so the node refuses it as spending missing inputs; once
//     the block is reconsidered the same transaction is valid again.
//   - unreachable: the connection to the node is cut right after the commit
//     (a TCP proxy in front of the real node stops accepting), so the node
//     cannot be asked at all; then it comes back.
//   - refused for its fee (Core): the node's -minrelaytxfee is above the
//     payout's fee rate; the operator's remedy from docs/payouts.md
//     (prioritisetransaction, then a higher fee floor) gets the same
//     transaction in and payouts resume.
func TestBroadcastFailureHaltsPayouts(t *testing.T) { forEachNode(t, testBroadcastFailureHaltsPayouts) }

func testBroadcastFailureHaltsPayouts(t *testing.T, nodeKind string) {
	type testCase struct {
		name string
		// refused: the failure is a refusal with a reason (else the node
		// could not be reached); reorg or fee says why.
		refused, reorg, fee bool
		nodeArgs            []string
	}
	cases := []testCase{
		{name: "refused after a reorg", refused: true, reorg: true},
		{name: "unreachable"},
	}
	if nodeKind == testenv.KindCore {
		// btcd has no prioritisetransaction (nor a way to change its relay
		// fee without a restart, which loses its regtest chain).
		cases = append(cases, testCase{name: "refused for its fee", refused: true, fee: true,
			nodeArgs: []string{"-minrelaytxfee=0.0002"}}) // 20 sat/vB
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nodeKind, p2pkh, 3, tc.nodeArgs...)
			ctx := context.Background()
			params := e.params
			a1, a2, a3 := recipient(t, 11, params), recipient(t, 12, params), recipient(t, 13, params)
			proxy := startProxy(t, strings.TrimPrefix(e.chain.RPCURL(), "http://"))
			node := newNode(t, e.chain, "http://"+proxy.addr())

			var reorged *chainhash.Hash
			var held []payment.UTXO
			if tc.reorg {
				// The first payout must spend a coinbase that a reorg can
				// take away while older pool coinbases stay mature: pay from
				// the coinbase of block 104 only, 100 blocks deep.
				utxos, err := e.store.UTXOs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range utxos {
					if err := e.rdb.HDel(ctx, e.store.UTXOsKey(), u.Key()).Err(); err != nil {
						t.Fatal(err)
					}
				}
				reorged = e.chain.Generate(1)[0]
				blk, err := e.rpc.GetBlock(reorged)
				if err != nil {
					t.Fatal(err)
				}
				cb := blk.Transactions[0]
				e.chain.Generate(testenv.CoinbaseMaturity)
				b := payment.UTXO{OutPoint: wire.OutPoint{Hash: cb.TxHash()}, Value: cb.TxOut[0].Value}
				if err := e.rdb.HSet(ctx, e.store.UTXOsKey(), b.Key(), b.Value).Err(); err != nil {
					t.Fatal(err)
				}
				e.total = b.Value
				e.seed(map[string]int64{a1: 10 * btcutil.SatoshiPerBitcoin})
				// The older coinbases become pool funds after the failure,
				// for the payouts that must then wait.
				held = utxos
			} else {
				e.seed(map[string]int64{a1: 10 * btcutil.SatoshiPerBitcoin, a3: 8 * btcutil.SatoshiPerBitcoin})
			}

			c := e.config(payment.ModeHot)
			c.MaxOutputs = 1 // one transaction per address
			p, err := payment.New(c, e.store, node)
			if err != nil {
				t.Fatal(err)
			}
			first := true
			payment.SetTestHooks(p, func(*payment.Payout) {
				if !first {
					return
				}
				first = false
				switch {
				case tc.reorg:
					e.chain.InvalidateBlock(*reorged)
				case !tc.refused:
					proxy.down()
				}
			}, nil)

			// Run 1: the first payout is committed, its broadcast fails; the
			// second batch (a3) must not be committed.
			res, err := p.RunOnce(ctx, false)
			if !errors.Is(err, payment.ErrHalted) {
				t.Fatalf("run 1: err %v, want ErrHalted", err)
			}
			if len(res.Payouts) != 1 || res.Payouts[0].State != payment.StatePending || res.Payouts[0].LastError == "" {
				t.Fatalf("run 1: payouts %+v, want one pending with its error", res.Payouts)
			}
			failed := res.Payouts[0]
			if failed.Outputs[0].Address != a1 {
				t.Fatalf("run 1 paid %s first, want %s", failed.Outputs[0].Address, a1)
			}
			raw := failed.RawTx
			if tc.refused != (failed.Refusal != "") {
				t.Fatalf("refusal %q (last error %q), want refused=%v", failed.Refusal, failed.LastError, tc.refused)
			}
			// The node's own words reach the record.
			why := map[bool]string{true: "min relay fee not met", false: "missingorspent"}[tc.fee]
			if nodeKind == testenv.KindBtcd {
				why = "orphan transaction"
			}
			if tc.refused && !strings.Contains(failed.Refusal, why) {
				t.Fatalf("refusal %q, want it to say %q", failed.Refusal, why)
			}
			e.checkLedger()

			// Meanwhile miners earn: new balances reach the threshold, and
			// (refused case) the older coinbases are pool funds again.
			if tc.reorg {
				for _, u := range held {
					if err := e.rdb.HSet(ctx, e.store.UTXOsKey(), u.Key(), u.Value).Err(); err != nil {
						t.Fatal(err)
					}
					if err := e.rdb.IncrBy(ctx, e.store.FeeBalanceKey(), u.Value).Err(); err != nil {
						t.Fatal(err)
					}
					e.total += u.Value
				}
			}
			e.credit(a2, 20*btcutil.SatoshiPerBitcoin)
			before := e.ledgerSnapshot()

			// Runs 2–4: still failing. Nothing new is committed, nothing
			// debited; the failure is counted, visible and alerting.
			for run := 2; run <= 4; run++ {
				res, err := p.RunOnce(ctx, false)
				if err == nil || len(res.Payouts) != 0 {
					t.Fatalf("run %d while the broadcast fails: err %v, %d new payouts", run, err, len(res.Payouts))
				}
				if got := e.ledgerSnapshot(); got != before {
					t.Fatalf("run %d changed the ledger:\n%s\n%s", run, before, got)
				}
				po, err := e.store.Payout(ctx, failed.ID)
				if err != nil {
					t.Fatal(err)
				}
				if po.RawTx != raw || po.State != payment.StatePending || po.LastError == "" {
					t.Fatalf("run %d: payout %+v", run, po)
				}
				if err := p.CheckBroadcasts(ctx); err == nil || !strings.Contains(err.Error(), po.LastError) {
					t.Fatalf("run %d: readiness %v, want the payout's error %q", run, err, po.LastError)
				}
				st := p.Status()
				// Unreachable: the run stops at its first question to the
				// node, before any broadcast; the alert stays up.
				if !st.Halted || st.AwaitingBroadcast != 1 || st.BroadcastRefused+st.BroadcastFailed < 1 {
					t.Fatalf("run %d: status %+v", run, st)
				}
				if tc.refused && (po.BroadcastFailures != run || st.BroadcastRefused != uint64(run) || st.BroadcastFailed != 0) {
					t.Fatalf("run %d: %d failures recorded, status %+v", run, po.BroadcastFailures, st)
				}
				if !tc.refused && (po.BroadcastFailures != 1 || st.BroadcastFailed != 1 || st.BroadcastRefused != 0) {
					t.Fatalf("run %d: %d failures recorded, status %+v; want the one unreachable broadcast", run, po.BroadcastFailures, st)
				}
			}
			if tot := e.checkLedger(); tot.Payouts != 1 {
				t.Fatalf("totals %+v, want the one payout", tot)
			}

			// The node takes it again: the same transaction goes out and
			// payouts resume in the same run.
			switch {
			case tc.reorg:
				if err := e.rpc.ReconsiderBlock(reorged); err != nil {
					t.Fatal(err)
				}
			case tc.fee:
				// The operator raises the payout's fee on the node (Core
				// counts the delta against its relay minimum) and the fee
				// floor for the next payouts (25 sat/vB).
				txid, _ := json.Marshal(failed.TxID)
				if _, err := e.rpc.RawRequest("prioritisetransaction", []json.RawMessage{txid, json.RawMessage("0"),
					json.RawMessage("100000")}); err != nil {
					t.Fatal(err)
				}
				c.FeeRateFloor = 25_000
				if p, err = payment.New(c, e.store, node); err != nil {
					t.Fatal(err)
				}
			default:
				proxy.up()
			}
			res, err = p.RunOnce(ctx, false)
			if err != nil {
				t.Fatalf("run after recovery: %v", err)
			}
			if len(res.Resolved) != 1 || res.Resolved[0].ID != failed.ID || res.Resolved[0].State != payment.StateBroadcast {
				t.Fatalf("resolved %+v", res.Resolved)
			}
			if err := p.CheckBroadcasts(ctx); err != nil {
				t.Fatalf("readiness after recovery: %v", err)
			}
			if st := p.Status(); st.Halted || st.AwaitingBroadcast != 0 {
				t.Fatalf("status after recovery: %+v", st)
			}
			wantNew := 2 // a2 and a3
			if tc.reorg {
				wantNew = 1 // a2 (only a1 was due at first)
			}
			if len(res.Payouts) != wantNew {
				t.Fatalf("run after recovery paid %d payouts, want %d", len(res.Payouts), wantNew)
			}
			e.chain.Generate(1)
			if res, err := p.RunOnce(ctx, false); err != nil || res.Open != 0 {
				t.Fatalf("after a block: %v, open %d", err, res.Open)
			}
			// What is on chain is the transaction signed at run 1.
			onChain, err := e.rpc.GetRawTransaction(mustHashPtr(t, failed.TxID))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := onChain.MsgTx().Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(buf.Bytes()) != raw {
				t.Fatal("the transaction mined is not the one recorded at the first broadcast")
			}
			want := map[string]int64{a1: 10 * btcutil.SatoshiPerBitcoin, a2: 20 * btcutil.SatoshiPerBitcoin}
			if !tc.reorg {
				want[a3] = 8 * btcutil.SatoshiPerBitcoin
			}
			got := e.received()
			for a, v := range want {
				if got[a] != v {
					t.Errorf("%s received %d, want %d", a, got[a], v)
				}
			}
			e.checkLedger()
			if bal, _ := e.store.Balances(ctx); len(bal) != 0 {
				t.Fatalf("balances left: %v", bal)
			}
		})
	}
}

// credit moves v satoshis from the fee account to addr's balance (Σ stays).
func (e *env) credit(addr string, v int64) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.rdb.HIncrBy(ctx, e.store.BalancesKey(), addr, v).Err(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.rdb.DecrBy(ctx, e.store.FeeBalanceKey(), v).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// ledgerSnapshot is every balance, the fee account, the pool UTXOs and the
// totals, as text.
func (e *env) ledgerSnapshot() string {
	e.t.Helper()
	ctx := context.Background()
	bal, err1 := e.store.Balances(ctx)
	fee, err2 := e.store.FeeBalance(ctx)
	u, err3 := e.store.UTXOs(ctx)
	tot, err4 := e.store.Totals(ctx)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		e.t.Fatalf("snapshot: %v", err)
	}
	sort.Slice(u, func(i, j int) bool { return u[i].Key() < u[j].Key() })
	return fmt.Sprint(bal, fee, u, tot)
}

// proxy forwards TCP connections to a node; down refuses new connections
// and cuts the open ones, as a node that went away; up listens again on the
// same port.
type proxy struct {
	t      testing.TB
	target string
	port   int

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: target, port: testenv.FreePort(t), conns: map[net.Conn]struct{}{}}
	p.up()
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

func (p *proxy) up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // the old socket may linger a moment
		if ln, err = net.Listen("tcp", p.addr()); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go p.serve(c)
		}
	}()
}

func (p *proxy) serve(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// TestColdBroadcastRefusedHalts: cold signing meets the same rule. The
// pool's UTXO is spent outside Lode after the unsigned payout was written;
// the signed PSBT comes back and the node refuses it: no new (unsigned)
// payout is written, nothing more debited, until the refused one is
// abandoned.
func TestColdBroadcastRefusedHalts(t *testing.T) { forEachNode(t, testColdBroadcastRefusedHalts) }

func testColdBroadcastRefusedHalts(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 2)
	ctx := context.Background()
	a1, a2 := recipient(t, 21, e.params), recipient(t, 22, e.params)
	e.seed(map[string]int64{a1: 10 * btcutil.SatoshiPerBitcoin})
	p := e.processor(e.config(payment.ModeCold))
	res, err := p.RunOnce(ctx, false)
	if err != nil || len(res.Payouts) != 1 || res.Payouts[0].State != payment.StateUnsigned {
		t.Fatalf("cold run: %v, %+v", err, res)
	}
	po := res.Payouts[0]
	op, err := wire.NewOutPointFromString(po.Inputs[0].OutPoint)
	if err != nil {
		t.Fatal(err)
	}
	e.spendOutside(*op, po.Inputs[0].Value)
	packet, err := payment.ReadPSBT(strings.NewReader(po.PSBT))
	if err != nil {
		t.Fatal(err)
	}
	signPSBT(t, packet, e.key, p2pkh)
	got, err := p.BroadcastPSBT(ctx, packet)
	if err == nil || got == nil || got.State != payment.StatePending || got.Refusal == "" || got.BroadcastFailures != 1 {
		t.Fatalf("broadcast of a signed payout whose input is spent: %v, %+v", err, got)
	}

	e.credit(a2, 20*btcutil.SatoshiPerBitcoin)
	before := e.ledgerSnapshot()
	for run := 1; run <= 2; run++ {
		res, err := p.RunOnce(ctx, false)
		if !errors.Is(err, payment.ErrHalted) || len(res.Payouts) != 0 || len(res.Halted) != 1 || res.Halted[0].ID != po.ID {
			t.Fatalf("cold run %d while halted: %v, %+v", run, err, res)
		}
		if got := e.ledgerSnapshot(); got != before {
			t.Fatalf("run %d changed the ledger:\n%s\n%s", run, before, got)
		}
	}
	if err := p.CheckBroadcasts(ctx); err == nil || !strings.Contains(err.Error(), got.Refusal) {
		t.Fatalf("readiness: %v, want the refusal %q", err, got.Refusal)
	}

	// The outside spend confirms: the payout can never be mined. Abandoned,
	// it gives its debit back and the next run pays both addresses.
	e.chain.Generate(1)
	if _, lost, err := p.Abandon(ctx, po.ID); err != nil || len(lost) != 1 {
		t.Fatalf("abandon: lost %v, %v", lost, err)
	}
	res, err = p.RunOnce(ctx, false)
	if err != nil || len(res.Payouts) != 1 || len(res.Payouts[0].Outputs) != 2 || res.Payouts[0].State != payment.StateUnsigned {
		t.Fatalf("run after abandon: %v, %+v", err, res)
	}
	if bal, _ := e.store.Balances(ctx); len(bal) != 0 {
		t.Fatalf("balances after the new payout: %v", bal)
	}
}

// spendOutside spends a pool output (paying the test key) in a transaction
// Lode knows nothing about, into the mempool.
func (e *env) spendOutside(op wire.OutPoint, value int64) {
	e.t.Helper()
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&op, nil, nil))
	tx.AddTxOut(wire.NewTxOut(value-100_000, e.script))
	sig, err := txscript.SignatureScript(tx, 0, e.script, txscript.SigHashAll, e.key, true)
	if err != nil {
		e.t.Fatal(err)
	}
	tx.TxIn[0].SignatureScript = sig
	if _, err := e.rpc.SendRawTransaction(tx, false); err != nil {
		e.t.Fatalf("spend outside Lode: %v", err)
	}
}
