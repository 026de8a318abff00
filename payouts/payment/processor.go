package payment

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"
)

// coinbaseMaturity is the consensus rule: a coinbase output is spendable
// after 100 confirmations on every network.
const coinbaseMaturity = 100

// Skipped is a balance that reached its threshold but was not paid.
type Skipped struct {
	Address string
	Balance int64
	Reason  string
}

// BatchError is a batch that could not be paid; its balances are intact.
type BatchError struct {
	Addresses []string
	Err       error
}

// Result is what a run did (or, dry, would do).
type Result struct {
	DryRun bool
	// FeeRate used, sat per 1000 vbytes, and where it came from.
	FeeRate       int64
	FeeRateSource string
	// Payouts planned (dry run: ID 0, no state) or committed by this run.
	Payouts []*Payout
	// Resolved are open payouts from earlier runs that this run moved on.
	Resolved []*Payout
	// Open counts the payouts still not confirmed after this run, Stuck the
	// ones among them flagged stuck.
	Open, Stuck int
	Skipped     []Skipped
	Failed      []BatchError
	// UnusableUTXOs are recorded pool UTXOs the node says cannot be spent
	// now (spent elsewhere, immature, wrong script or value); they stay
	// recorded.
	UnusableUTXOs []string
	// Halted lists the payouts whose broadcast failed (the node does not
	// have them); while there are any, no new payout is committed and the
	// run's error wraps ErrHalted.
	Halted []*Payout
}

// Status is the processor's alerting state, for metrics: as of its last
// run for the gauges, since start for the counters.
type Status struct {
	// Halted: the last run committed no new payout because earlier ones
	// are not on the network.
	Halted bool
	// AwaitingBroadcast counts the signed payouts the node does not have
	// (pending, or their last broadcast failed).
	AwaitingBroadcast int
	// Reason describes the first payout holding the others back.
	Reason string
	// BroadcastRefused counts broadcasts the node refused with a reason,
	// BroadcastFailed the ones where it could not be asked (down, timeout,
	// an unreadable answer).
	BroadcastRefused, BroadcastFailed uint64
}

// Processor pays balances. Create it with New.
type Processor struct {
	cfg   Config
	store Store
	node  Node
	pool  poolOutput
	log   *zap.Logger

	mu     sync.Mutex
	status Status

	// Test hooks, called right after the payout is committed and right
	// after the node accepted it (before the record says so).
	afterCommit    func(*Payout)
	afterBroadcast func(*Payout)
}

// New validates cfg and returns a Processor.
func New(cfg Config, store Store, node Node) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || node == nil {
		return nil, errors.New("payment: store and node are required")
	}
	pool, err := poolScript(cfg.PoolAddress, cfg.Params)
	if err != nil {
		return nil, fmt.Errorf("payment: %w", err)
	}
	return &Processor{cfg: cfg, store: store, node: node, pool: pool, log: cfg.Logger}, nil
}

// Config returns the validated configuration (defaults filled in). The key
// is not exposed.
func (p *Processor) Config() Config {
	c := p.cfg
	c.Key = nil
	return c
}

// Run pays every Config.Interval until ctx is done, starting at once.
// Errors of one run are logged; the next run tries again.
func (p *Processor) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		res, err := p.RunOnce(ctx, false)
		if err != nil && ctx.Err() == nil {
			p.log.Error("payout run failed", zap.Error(err))
		}
		if p.cfg.AfterRun != nil {
			p.cfg.AfterRun(res, err)
		}
		if res != nil {
			p.log.Info("payout run", zap.Int("payouts", len(res.Payouts)), zap.Int("resolved", len(res.Resolved)),
				zap.Int("open", res.Open), zap.Int("stuck", res.Stuck), zap.Int("skipped", len(res.Skipped)),
				zap.Int("failed", len(res.Failed)), zap.Int64("fee_rate", res.FeeRate))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce resolves open payouts, then pays the balances that reached their
// thresholds. With dryRun nothing is written or broadcast: the Result shows
// what would be paid and the fees. The error joins every failure (the Result
// is still returned when planning got that far); balances of failed batches
// are intact.
func (p *Processor) RunOnce(ctx context.Context, dryRun bool) (*Result, error) {
	res := &Result{DryRun: dryRun}
	var errs []error
	if !dryRun {
		if err := p.checkTxIndex(ctx); err != nil {
			return res, err
		}
		resolved, err := p.Resolve(ctx)
		res.Resolved = resolved
		if err != nil {
			// Reported, and a payout the node could not be asked about
			// stays pending, which halts new payouts below.
			errs = append(errs, err)
		}
	}
	// Every payout debits balances when it is committed. While an earlier
	// one is not on the network (its broadcast failed, or it is pending
	// and the node could not be asked), new ones would only pile up
	// debited and unpaid: nothing new is committed until the node takes
	// the earlier transactions (retried above, the same raw transaction
	// every run) or the operator abandons them.
	open, err := p.store.OpenPayouts(ctx)
	if err != nil {
		return res, errors.Join(append(errs, fmt.Errorf("payment: read open payouts: %w", err))...)
	}
	for _, po := range open {
		if po.AwaitingBroadcast() {
			res.Halted = append(res.Halted, po)
		}
	}
	if len(res.Halted) > 0 {
		err := p.halt(res.Halted, dryRun)
		if !dryRun {
			p.finish(ctx, res)
		}
		return res, errors.Join(append(errs, err)...)
	}
	balances, err := p.store.Balances(ctx)
	if err != nil {
		return nil, fmt.Errorf("payment: read balances: %w", err)
	}
	thresholds, err := p.store.Thresholds(ctx)
	if err != nil {
		return nil, fmt.Errorf("payment: read thresholds: %w", err)
	}
	utxos, err := p.store.UTXOs(ctx)
	if err != nil {
		return nil, fmt.Errorf("payment: read pool utxos: %w", err)
	}
	outs, scripts := p.eligible(balances, thresholds, res)
	if len(outs) > 0 {
		res.FeeRate, res.FeeRateSource = p.feeRate(ctx)
		usable, err := p.usableUTXOs(ctx, utxos, res)
		if err != nil {
			return nil, err
		}
		feeAccount, err := p.store.FeeBalance(ctx)
		if err != nil {
			return nil, fmt.Errorf("payment: read fee account: %w", err)
		}
		for start := 0; start < len(outs); start += p.cfg.MaxOutputs {
			end := min(start+p.cfg.MaxOutputs, len(outs))
			payout, rest, err := p.payBatch(ctx, outs[start:end], scripts[start:end], usable, res.FeeRate, &feeAccount, dryRun)
			if err != nil {
				addrs := make([]string, 0, end-start)
				for _, o := range outs[start:end] {
					addrs = append(addrs, o.Address)
				}
				res.Failed = append(res.Failed, BatchError{Addresses: addrs, Err: err})
				errs = append(errs, err)
				if ctx.Err() != nil {
					break
				}
				continue
			}
			usable = rest
			res.Payouts = append(res.Payouts, payout)
			if payout.BroadcastFailed() {
				// The node did not take it: the other batches wait.
				res.Halted = append(res.Halted, payout)
				errs = append(errs, p.halt(res.Halted, false))
				for _, o := range outs[end:] {
					res.Failed = append(res.Failed, BatchError{Addresses: []string{o.Address}, Err: ErrHalted})
				}
				break
			}
		}
	}
	if !dryRun {
		p.finish(ctx, res)
	}
	return res, errors.Join(errs...)
}

// halt is the alert for payouts the node does not have: an error-level log
// line with the reason, and the run's error (wrapping ErrHalted).
func (p *Processor) halt(waiting []*Payout, dryRun bool) error {
	first := waiting[0]
	reason := first.LastError
	if reason == "" {
		reason = "not yet accepted by the node"
	}
	if !dryRun {
		p.log.Error("new payouts halted: a payout transaction is not on the network; it is re-broadcast every run "+
			"until the node takes it or the operator abandons it (lodectl payouts abandon, docs/payouts.md)",
			zap.Int("waiting", len(waiting)), zap.Int64("payout", first.ID), zap.String("txid", first.TxID),
			zap.Int("failed_broadcasts", first.BroadcastFailures), zap.String("refusal", first.Refusal),
			zap.String("reason", reason))
	}
	return fmt.Errorf("%w: %d payout(s) not on the network, first payout %d (txid %s): %s",
		ErrHalted, len(waiting), first.ID, first.TxID, reason)
}

// finish counts the open payouts into res and the status.
func (p *Processor) finish(ctx context.Context, res *Result) {
	open, err := p.store.OpenPayouts(ctx)
	if err != nil {
		return
	}
	res.Open, res.Stuck = len(open), 0
	awaiting := 0
	for _, o := range open {
		if o.State == StateStuck {
			res.Stuck++
		}
		if o.AwaitingBroadcast() {
			awaiting++
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status.Halted, p.status.AwaitingBroadcast, p.status.Reason = len(res.Halted) > 0, awaiting, ""
	if len(res.Halted) > 0 {
		h := res.Halted[0]
		p.status.Reason = fmt.Sprintf("payout %d (txid %s): %s", h.ID, h.TxID, h.LastError)
	}
}

// Status returns the alerting state (see Status).
func (p *Processor) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// CheckBroadcasts is a readiness check: it fails, with the reason, while a
// payout's last broadcast failed (so new payouts are halted). It reads the
// store, so it tells the truth in every process, whichever one pays.
func (p *Processor) CheckBroadcasts(ctx context.Context) error {
	open, err := p.store.OpenPayouts(ctx)
	if err != nil {
		return fmt.Errorf("read open payouts: %w", err)
	}
	var failed []string
	for _, po := range open {
		if po.BroadcastFailed() {
			failed = append(failed, fmt.Sprintf("payout %d (txid %s, %d failed broadcasts): %s",
				po.ID, po.TxID, po.BroadcastFailures, po.LastError))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("new payouts halted: %s", strings.Join(failed, "; "))
}

// eligible lists the addresses to pay, sorted by address, with their
// scripts; invalid addresses are reported in res.Skipped.
func (p *Processor) eligible(balances, thresholds map[string]int64, res *Result) ([]Output, [][]byte) {
	addrs := make([]string, 0, len(balances))
	for a := range balances {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var outs []Output
	var scripts [][]byte
	for _, a := range addrs {
		bal := balances[a]
		threshold := p.cfg.Threshold
		if t, ok := thresholds[a]; ok && t > 0 {
			threshold = max(t, MinThreshold)
		}
		if bal < threshold {
			continue
		}
		script, err := recipientScript(a, p.cfg.Params)
		if err != nil {
			res.Skipped = append(res.Skipped, Skipped{Address: a, Balance: bal, Reason: err.Error()})
			p.log.Warn("balance has an invalid payout address; not paid", zap.String("address", a),
				zap.Int64("balance", bal), zap.Error(err))
			continue
		}
		outs = append(outs, Output{Address: a, Debit: bal})
		scripts = append(scripts, script)
	}
	return outs, scripts
}

// feeRate asks the node and clamps to [floor, cap]; without an estimate the
// floor is used.
func (p *Processor) feeRate(ctx context.Context) (int64, string) {
	rate, err := p.node.EstimateFeeRate(ctx, p.cfg.ConfTarget)
	switch {
	case err != nil:
		p.log.Warn("no fee estimate from the node; using the floor", zap.Error(err))
		return p.cfg.FeeRateFloor, "floor (node: " + err.Error() + ")"
	case rate < p.cfg.FeeRateFloor:
		return p.cfg.FeeRateFloor, fmt.Sprintf("floor (node estimate %d)", rate)
	case rate > p.cfg.FeeRateCap:
		return p.cfg.FeeRateCap, fmt.Sprintf("cap (node estimate %d)", rate)
	}
	return rate, "node"
}

// usableUTXOs checks every recorded pool UTXO against the node and returns
// the spendable ones, largest first.
func (p *Processor) usableUTXOs(ctx context.Context, utxos []UTXO, res *Result) ([]UTXO, error) {
	var usable []UTXO
	for _, u := range utxos {
		out, err := p.node.GetTxOut(ctx, u.OutPoint, true)
		if err != nil {
			return nil, fmt.Errorf("payment: check pool utxo %s: %w", u.Key(), err)
		}
		reason := ""
		switch {
		case out == nil:
			reason = "spent or unknown to the node"
		case !bytes.Equal(out.PkScript, p.pool.script):
			reason = "does not pay the pool address"
		case out.Value != u.Value:
			reason = fmt.Sprintf("node says %d sat, recorded %d", out.Value, u.Value)
		case out.Coinbase && out.Confirmations < coinbaseMaturity:
			reason = fmt.Sprintf("coinbase with %d confirmations is immature", out.Confirmations)
		case out.Confirmations < 1:
			reason = "unconfirmed"
		}
		if reason != "" {
			res.UnusableUTXOs = append(res.UnusableUTXOs, u.Key()+": "+reason)
			p.log.Warn("pool utxo not usable", zap.String("outpoint", u.Key()), zap.String("reason", reason))
			continue
		}
		usable = append(usable, u)
	}
	sort.Slice(usable, func(i, j int) bool {
		if usable[i].Value != usable[j].Value {
			return usable[i].Value > usable[j].Value
		}
		return usable[i].Key() < usable[j].Key()
	})
	return usable, nil
}

// payBatch plans one transaction and, unless dry, commits and broadcasts it.
// It returns the UTXOs left for the next batch.
func (p *Processor) payBatch(ctx context.Context, outs []Output, scripts [][]byte, utxos []UTXO, rate int64, feeAccount *int64, dryRun bool) (*Payout, []UTXO, error) {
	b, err := buildBatch(outs, scripts, utxos, p.pool, rate, p.cfg.FeePayer, p.cfg.MaxInputs)
	if err != nil {
		return nil, utxos, err
	}
	var feeDebit int64
	if p.cfg.FeePayer == FeePayerPool {
		feeDebit = b.fee
		if *feeAccount < feeDebit {
			return nil, utxos, fmt.Errorf("%w: fee account holds %d sat, the fee is %d sat",
				ErrInsufficientFunds, *feeAccount, feeDebit)
		}
	}
	now := p.cfg.Now()
	po := &Payout{
		Created:         now,
		Updated:         now,
		UnsignedTxID:    b.tx.TxHash().String(),
		FeeRate:         rate,
		Fee:             b.fee,
		FeePayer:        p.cfg.FeePayer,
		FeeAccountDebit: feeDebit,
		Outputs:         b.outputs,
		ChangeVout:      -1,
		ChangeValue:     b.change,
	}
	if b.change > 0 {
		po.ChangeVout = len(b.tx.TxOut) - 1
	}
	for _, u := range b.inputs {
		po.Inputs = append(po.Inputs, Input{OutPoint: u.Key(), Value: u.Value})
	}
	rest := remove(utxos, b.inputs)
	if dryRun {
		*feeAccount -= feeDebit
		return po, rest, nil
	}
	switch p.cfg.Mode {
	case ModeHot:
		if err := signTx(b.tx, b.inputs, p.pool, p.cfg.Key); err != nil {
			return nil, utxos, fmt.Errorf("payment: %w", err)
		}
		raw, err := serialize(b.tx)
		if err != nil {
			return nil, utxos, err
		}
		po.State, po.RawTx, po.TxID = StatePending, raw, b.tx.TxHash().String()
	case ModeCold:
		packet, err := p.newPSBT(ctx, b.tx, b.inputs)
		if err != nil {
			return nil, utxos, err
		}
		po.State, po.PSBT = StateUnsigned, packet
		if p.pool.kind.segwit() {
			// Signatures do not change a segwit transaction's id.
			po.TxID = po.UnsignedTxID
		}
	}
	id, err := p.store.NextPayoutID(ctx)
	if err != nil {
		return nil, utxos, fmt.Errorf("payment: allocate payout id: %w", err)
	}
	po.ID = id
	if err := p.store.CommitPayout(ctx, po); err != nil {
		return nil, utxos, fmt.Errorf("payment: commit payout %d: %w", id, err)
	}
	*feeAccount -= feeDebit
	p.log.Info("payout committed", zap.Int64("payout", id), zap.String("state", string(po.State)),
		zap.String("txid", po.TxID), zap.Int("outputs", len(po.Outputs)), zap.Int64("paid", po.Paid()),
		zap.Int64("fee", po.Fee))
	if p.afterCommit != nil {
		p.afterCommit(po)
	}
	if po.State == StatePending {
		// A failed broadcast leaves the payout pending; the next run (or a
		// restart) re-broadcasts the same transaction.
		_ = p.broadcast(ctx, po)
	}
	return po, rest, nil
}

func remove(utxos, spent []UTXO) []UTXO {
	gone := make(map[wire.OutPoint]bool, len(spent))
	for _, u := range spent {
		gone[u.OutPoint] = true
	}
	rest := make([]UTXO, 0, len(utxos))
	for _, u := range utxos {
		if !gone[u.OutPoint] {
			rest = append(rest, u)
		}
	}
	return rest
}

func serialize(tx *wire.MsgTx) (string, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return "", fmt.Errorf("payment: serialize transaction: %w", err)
	}
	return hex.EncodeToString(buf.Bytes()), nil
}

func (po *Payout) tx() (*wire.MsgTx, error) {
	raw, err := hex.DecodeString(po.RawTx)
	if err != nil {
		return nil, fmt.Errorf("payout %d: raw transaction: %w", po.ID, err)
	}
	tx := new(wire.MsgTx)
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("payout %d: raw transaction: %w", po.ID, err)
	}
	return tx, nil
}

// ensureCommitted holds back the broadcast of a payout this call did not
// commit itself until the store holds its record as durably as a
// successful commit (Store.EnsureCommitted; with Redis replicas, WAIT). Its
// commit may have been refused acknowledgement (the replicas were behind):
// it then stands on the primary alone, and a failover to a replica without
// it would forget the debits while the transaction is out, so the balances
// would be paid again. Not broadcast, the payout stays pending (new payouts
// halt) and the next run tries again.
func (p *Processor) ensureCommitted(ctx context.Context, po *Payout) error {
	if err := p.store.EnsureCommitted(ctx, po); err != nil {
		p.log.Warn("payout not broadcast: its record is not acknowledged by the store's replicas yet; retried next run",
			zap.Int64("payout", po.ID), zap.String("txid", po.TxID), zap.Error(err))
		return fmt.Errorf("payment: payout %d not broadcast: %w", po.ID, err)
	}
	return nil
}

// broadcast sends the payout's recorded transaction and moves it to
// broadcast; on failure the error is recorded on the payout.
func (p *Processor) broadcast(ctx context.Context, po *Payout) error {
	tx, err := po.tx()
	if err != nil {
		return err
	}
	from := po.State
	if err := p.node.SendRawTransaction(ctx, tx); err != nil {
		po.BroadcastFailures++
		po.LastError, po.Refusal = "broadcast: "+err.Error(), ""
		var refused *btcjson.RPCError
		if errors.As(err, &refused) {
			// The node answered and gave a reason: it will refuse again
			// until something changes (a reorg, its policy, the inputs).
			po.Refusal = refused.Message
			p.count(func(s *Status) { s.BroadcastRefused++ })
			p.log.Error("payout broadcast refused by the node; will retry the same transaction, new payouts halted",
				zap.Int64("payout", po.ID), zap.String("txid", po.TxID), zap.String("refusal", refused.Message),
				zap.Int("failed_broadcasts", po.BroadcastFailures), zap.Error(err))
		} else {
			p.count(func(s *Status) { s.BroadcastFailed++ })
			p.log.Error("payout broadcast failed: node unreachable or unreadable; will retry the same transaction, new payouts halted",
				zap.Int64("payout", po.ID), zap.String("txid", po.TxID),
				zap.Int("failed_broadcasts", po.BroadcastFailures), zap.Error(err))
		}
		po.Updated = p.cfg.Now()
		if uerr := p.store.UpdatePayout(ctx, po, from); uerr != nil {
			p.log.Warn("record broadcast error", zap.Int64("payout", po.ID), zap.Error(uerr))
		}
		return fmt.Errorf("payment: broadcast payout %d: %w", po.ID, err)
	}
	if p.afterBroadcast != nil {
		p.afterBroadcast(po)
	}
	now := p.cfg.Now()
	if po.BroadcastAt.IsZero() {
		po.BroadcastAt = now
	}
	if po.State == StatePending {
		po.State = StateBroadcast
	}
	po.clearBroadcastError()
	po.Updated = now
	if err := p.store.UpdatePayout(ctx, po, from); err != nil {
		return fmt.Errorf("payment: record broadcast of payout %d: %w", po.ID, err)
	}
	p.log.Info("payout broadcast", zap.Int64("payout", po.ID), zap.String("txid", po.TxID))
	return nil
}

func (po *Payout) clearBroadcastError() {
	po.LastError, po.Refusal, po.BroadcastFailures = "", "", 0
}

func (p *Processor) count(f func(*Status)) {
	p.mu.Lock()
	f(&p.status)
	p.mu.Unlock()
}

// Resolve moves every open payout forward: a payout the node does not know
// is re-broadcast (the same raw transaction), a confirmed one is marked
// confirmed and its change becomes a pool UTXO, one unconfirmed for longer
// than StuckAfter is flagged stuck. Unsigned (cold) payouts wait for
// BroadcastPSBT. It returns the payouts whose record changed.
func (p *Processor) Resolve(ctx context.Context) ([]*Payout, error) {
	open, err := p.store.OpenPayouts(ctx)
	if err != nil {
		return nil, fmt.Errorf("payment: read open payouts: %w", err)
	}
	var changed []*Payout
	var errs []error
	for _, po := range open {
		if po.State == StateUnsigned {
			continue
		}
		ok, err := p.resolveOne(ctx, po)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			changed = append(changed, po)
		}
	}
	return changed, errors.Join(errs...)
}

func (p *Processor) resolveOne(ctx context.Context, po *Payout) (bool, error) {
	txid, err := chainhash.NewHashFromStr(po.TxID)
	if err != nil {
		return false, fmt.Errorf("payment: payout %d: bad txid %q", po.ID, po.TxID)
	}
	st, err := p.node.TxStatus(ctx, *txid)
	if err != nil {
		return false, fmt.Errorf("payment: look up payout %d tx %s: %w", po.ID, po.TxID, err)
	}
	from := po.State
	now := p.cfg.Now()
	if st.Found && st.Confirmations >= p.cfg.Confirmations {
		po.State, po.Confirmations, po.BlockHash = StateConfirmed, st.Confirmations, st.BlockHash
		po.ConfirmedAt, po.Updated = now, now
		po.clearBroadcastError()
		if po.BroadcastAt.IsZero() {
			po.BroadcastAt = now
		}
		if err := p.store.ConfirmPayout(ctx, po, from); err != nil {
			return false, fmt.Errorf("payment: confirm payout %d: %w", po.ID, err)
		}
		p.log.Info("payout confirmed", zap.Int64("payout", po.ID), zap.String("txid", po.TxID),
			zap.Int64("confirmations", st.Confirmations))
		return true, nil
	}
	changed := false
	if st.Found {
		if po.State == StatePending {
			po.State, changed = StateBroadcast, true
		}
		if po.BroadcastAt.IsZero() {
			po.BroadcastAt, changed = now, true
		}
		if po.Confirmations != st.Confirmations {
			po.Confirmations, changed = st.Confirmations, true
		}
		if po.BroadcastFailed() {
			// The node has it after all (another node relayed it, or a
			// reorg brought it back): nothing holds new payouts back.
			po.clearBroadcastError()
			changed = true
		}
	} else {
		// Not in the mempool nor the chain: died before broadcasting, or
		// the mempool dropped it. The same transaction goes out again, once
		// the record is held as a commit must be.
		if err := p.ensureCommitted(ctx, po); err != nil {
			return false, err
		}
		if err := p.broadcast(ctx, po); err != nil {
			p.flagStuck(ctx, po, now)
			return true, err
		}
		from, changed = po.State, true
	}
	if p.stuck(po, now) && po.State != StateStuck {
		po.State, changed = StateStuck, true
		p.log.Warn("payout stuck: unconfirmed past the limit; operator attention needed",
			zap.Int64("payout", po.ID), zap.String("txid", po.TxID), zap.Duration("limit", p.cfg.StuckAfter))
	}
	if !changed {
		return false, nil
	}
	po.Updated = now
	if err := p.store.UpdatePayout(ctx, po, from); err != nil {
		return false, fmt.Errorf("payment: update payout %d: %w", po.ID, err)
	}
	return true, nil
}

func (p *Processor) stuck(po *Payout, now time.Time) bool {
	since := po.BroadcastAt
	if since.IsZero() {
		since = po.Created
	}
	return now.Sub(since) > p.cfg.StuckAfter
}

// flagStuck marks a payout that cannot even be re-broadcast as stuck once it
// is past the limit.
func (p *Processor) flagStuck(ctx context.Context, po *Payout, now time.Time) {
	if po.State == StateStuck || !p.stuck(po, now) {
		return
	}
	from := po.State
	po.State, po.Updated = StateStuck, now
	if err := p.store.UpdatePayout(ctx, po, from); err != nil {
		p.log.Warn("flag payout stuck", zap.Int64("payout", po.ID), zap.Error(err))
	}
	p.log.Warn("payout stuck: unconfirmed past the limit; operator attention needed",
		zap.Int64("payout", po.ID), zap.String("txid", po.TxID), zap.String("last_error", po.LastError))
}

// Abandon gives a payout's debits back: the balances and fee account are
// credited again, the totals reduced, and the inputs that are still unspent
// return to the pool's UTXOs; the payout ends in StateAbandoned. It is
// refused unless it is certain the payout transaction can never be mined:
//   - an unsigned (cold) payout whose inputs are all still unspent (no
//     signed version was broadcast), or
//   - a pending, broadcast or stuck payout the node does not know (not in
//     its mempool nor its chain) with at least one input already spent by
//     another transaction in the chain.
//
// A payout that is merely slow is never abandoned: that is how pools pay
// twice. It returns the inputs that were spent elsewhere (lost to the pool).
func (p *Processor) Abandon(ctx context.Context, id int64) (*Payout, []Input, error) {
	// Without a transaction index a confirmed payout looks never mined, and
	// abandoning it would pay its debits a second time.
	if err := p.checkTxIndex(ctx); err != nil {
		return nil, nil, err
	}
	po, err := p.store.Payout(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if !po.State.Open() {
		return nil, nil, fmt.Errorf("%w: payout %d is %s", ErrWrongState, id, po.State)
	}
	var restore []UTXO
	var lost []Input
	for _, in := range po.Inputs {
		op, err := wire.NewOutPointFromString(in.OutPoint)
		if err != nil {
			return nil, nil, fmt.Errorf("payment: payout %d input %q: %w", id, in.OutPoint, err)
		}
		// Unsigned: any spend, even in the mempool, may be a signed version
		// of this payout, so it blocks. Signed: only a spend in the chain is
		// final; a conflicting mempool spend could still be evicted and this
		// payout mined after all.
		out, err := p.node.GetTxOut(ctx, *op, po.State == StateUnsigned)
		if err != nil {
			return nil, nil, fmt.Errorf("payment: check input %s: %w", in.OutPoint, err)
		}
		if out == nil {
			lost = append(lost, in)
		} else {
			restore = append(restore, UTXO{OutPoint: *op, Value: in.Value})
		}
	}
	if po.TxID != "" {
		txid, err := chainhash.NewHashFromStr(po.TxID)
		if err != nil {
			return nil, nil, fmt.Errorf("payment: payout %d: bad txid %q", id, po.TxID)
		}
		st, err := p.node.TxStatus(ctx, *txid)
		if err != nil {
			return nil, nil, fmt.Errorf("payment: look up payout %d: %w", id, err)
		}
		if st.Found {
			return nil, nil, fmt.Errorf("%w: payout %d's transaction is known to the node (%d confirmations); it may still confirm",
				ErrWrongState, id, st.Confirmations)
		}
	}
	switch {
	case po.State == StateUnsigned && len(lost) > 0:
		return nil, nil, fmt.Errorf("%w: %d input(s) of unsigned payout %d are spent: a signed version may have been broadcast",
			ErrWrongState, len(lost), id)
	case po.State != StateUnsigned && len(lost) == 0:
		return nil, nil, fmt.Errorf("%w: every input of payout %d is unspent, so its transaction could still confirm; see docs/payouts.md",
			ErrWrongState, id)
	}
	from := po.State
	po.State, po.Updated = StateAbandoned, p.cfg.Now()
	if err := p.store.AbandonPayout(ctx, po, restore, from); err != nil {
		return nil, nil, fmt.Errorf("payment: abandon payout %d: %w", id, err)
	}
	p.log.Warn("payout abandoned; balances credited back", zap.Int64("payout", id), zap.String("txid", po.TxID),
		zap.Int("inputs_restored", len(restore)), zap.Int("inputs_lost", len(lost)))
	return po, lost, nil
}

// checkTxIndex refuses to resolve or abandon payouts against a node that
// cannot look confirmed transactions up (see txIndexChecker).
func (p *Processor) checkTxIndex(ctx context.Context) error {
	if n, ok := p.node.(txIndexChecker); ok {
		if err := n.CheckTxIndex(ctx); err != nil {
			return fmt.Errorf("payment: %w", err)
		}
	}
	return nil
}
