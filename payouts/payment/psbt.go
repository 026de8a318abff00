package payment

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"
)

// maxPSBTSize bounds what BroadcastPSBT reads.
const maxPSBTSize = 16 << 20

// recentPayouts is how many of the newest payouts a refused PSBT is looked
// up in, to tell a closed payout's from one the ledger never knew.
const recentPayouts = 1000

// newPSBT wraps the unsigned tx in a BIP174 PSBT carrying what a signer
// needs: the witness UTXO for segwit inputs and the full previous transaction
// for non-taproot inputs (hardware signers insist on it to check amounts).
func (p *Processor) newPSBT(ctx context.Context, tx *wire.MsgTx, inputs []UTXO) (string, error) {
	packet, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		return "", fmt.Errorf("payment: new psbt: %w", err)
	}
	prev := map[chainhash.Hash]*wire.MsgTx{}
	for i, u := range inputs {
		in := &packet.Inputs[i]
		if p.pool.kind.segwit() {
			in.WitnessUtxo = wire.NewTxOut(u.Value, p.pool.script)
		}
		if p.pool.kind == kindP2TR {
			in.SighashType = txscript.SigHashDefault
			continue
		}
		in.SighashType = txscript.SigHashAll
		ptx, ok := prev[u.OutPoint.Hash]
		if !ok {
			ptx, err = p.node.GetRawTransaction(ctx, u.OutPoint.Hash)
			if err != nil {
				return "", fmt.Errorf("payment: previous transaction %s for the psbt: %w", u.OutPoint.Hash, err)
			}
			prev[u.OutPoint.Hash] = ptx
		}
		in.NonWitnessUtxo = ptx
	}
	if err := packet.SanityCheck(); err != nil {
		return "", fmt.Errorf("payment: psbt sanity check: %w", err)
	}
	s, err := packet.B64Encode()
	if err != nil {
		return "", fmt.Errorf("payment: encode psbt: %w", err)
	}
	return s, nil
}

// ReadPSBT parses a PSBT in binary or base64 form.
func ReadPSBT(r io.Reader) (*psbt.Packet, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPSBTSize))
	if err != nil {
		return nil, fmt.Errorf("read psbt: %w", err)
	}
	b64 := !bytes.HasPrefix(data, []byte("psbt\xff"))
	if b64 {
		data = bytes.TrimSpace(data)
		// Validate the encoding here for a clearer message than the parser's.
		if _, err := base64.StdEncoding.DecodeString(string(data)); err != nil {
			return nil, fmt.Errorf("read psbt: neither binary nor base64: %w", err)
		}
	}
	packet, err := psbt.NewFromRawBytes(bytes.NewReader(data), b64)
	if err != nil {
		return nil, fmt.Errorf("read psbt: %w", err)
	}
	return packet, nil
}

// BroadcastPSBT takes a signed PSBT for an unsigned (cold) payout, finalizes
// it, checks that it is exactly the recorded transaction and that every
// signature verifies, records the signed transaction (state pending) and
// broadcasts it. Handing in the PSBT of a payout already signed broadcasts
// the recorded transaction again and is not an error.
func (p *Processor) BroadcastPSBT(ctx context.Context, packet *psbt.Packet) (*Payout, error) {
	unsigned := packet.UnsignedTx.TxHash().String()
	open, err := p.store.OpenPayouts(ctx)
	if err != nil {
		return nil, fmt.Errorf("payment: read open payouts: %w", err)
	}
	var po *Payout
	for _, o := range open {
		if o.UnsignedTxID == unsigned {
			po = o
			break
		}
	}
	if po == nil {
		return nil, p.unknownPSBT(ctx, packet, open)
	}
	if po.State != StateUnsigned {
		// Already signed: idempotent retry.
		if po.State == StatePending {
			if err := p.ensureCommitted(ctx, po); err != nil {
				return po, err
			}
			if err := p.broadcast(ctx, po); err != nil {
				return po, err
			}
		}
		return po, nil
	}
	if err := psbt.MaybeFinalizeAll(packet); err != nil {
		return nil, fmt.Errorf("%w: finalize: %v", ErrPSBTMismatch, err)
	}
	tx, err := psbt.Extract(packet)
	if err != nil {
		return nil, fmt.Errorf("%w: extract: %v", ErrPSBTMismatch, err)
	}
	inputs := make([]UTXO, len(po.Inputs))
	for i, in := range po.Inputs {
		op, err := wire.NewOutPointFromString(in.OutPoint)
		if err != nil {
			return nil, fmt.Errorf("payment: payout %d input %q: %w", po.ID, in.OutPoint, err)
		}
		inputs[i] = UTXO{OutPoint: *op, Value: in.Value}
	}
	if err := verifyTx(tx, inputs, p.pool.script); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPSBTMismatch, err)
	}
	if err := p.checkOutputs(tx, po); err != nil {
		return nil, err
	}
	raw, err := serialize(tx)
	if err != nil {
		return nil, err
	}
	po.State, po.RawTx, po.TxID, po.Updated = StatePending, raw, tx.TxHash().String(), p.cfg.Now()
	if err := p.store.UpdatePayout(ctx, po, StateUnsigned); err != nil {
		return nil, fmt.Errorf("payment: record signed payout %d: %w", po.ID, err)
	}
	p.log.Info("signed payout recorded", zap.Int64("payout", po.ID), zap.String("txid", po.TxID))
	// The unsigned commit (or this update) may not have reached the
	// replicas.
	if err := p.ensureCommitted(ctx, po); err != nil {
		return po, err
	}
	if err := p.broadcast(ctx, po); err != nil {
		return po, err
	}
	return po, nil
}

// unknownPSBT is the refusal of a PSBT no open payout was written for. A
// confirmed or abandoned payout among the newest recentPayouts is named.
// Otherwise its payout was forgotten whole by a Redis failover to a replica
// that never had its commit (docs/redis.md), abandoned long ago, or is no
// payout of this pool: no balance is debited for it, so a broadcast by
// other means would pay them a second time; the error says so and where its
// inputs are (free pool UTXOs, reserved by other payouts, or not the
// pool's). The look-ups only word the refusal: one that fails leaves a
// vaguer message, never an acceptance.
func (p *Processor) unknownPSBT(ctx context.Context, packet *psbt.Packet, open []*Payout) error {
	unsigned := packet.UnsignedTx.TxHash().String()
	if recent, err := p.store.Payouts(ctx, recentPayouts); err == nil {
		for _, o := range recent {
			if o.UnsignedTxID == unsigned && !o.State.Open() {
				warn := ""
				if o.State == StateAbandoned {
					warn = "; its debits were given back, so do not broadcast it by other means: it would pay them twice"
				}
				return fmt.Errorf("%w: payout %d with unsigned txid %s is %s; nothing was recorded or broadcast%s",
					ErrPSBTMismatch, o.ID, unsigned, o.State, warn)
			}
		}
	}
	reservedBy := map[string]int64{}
	for _, o := range open {
		for _, in := range o.Inputs {
			reservedBy[in.OutPoint] = o.ID
		}
	}
	where := "not checked"
	if utxos, err := p.store.UTXOs(ctx); err == nil {
		free := make(map[string]bool, len(utxos))
		for _, u := range utxos {
			free[u.Key()] = true
		}
		var nFree, nOther int
		var others []string
		for _, in := range packet.UnsignedTx.TxIn {
			op := in.PreviousOutPoint.String()
			switch id, ok := reservedBy[op]; {
			case free[op]:
				nFree++
			case ok:
				others = append(others, fmt.Sprintf("%s by payout %d", op, id))
			default:
				nOther++
			}
		}
		where = fmt.Sprintf("%d of its %d inputs are unreserved pool UTXOs, %d reserved by other payouts%s, %d not pool UTXOs",
			nFree, len(packet.UnsignedTx.TxIn), len(others), listed(others), nOther)
	}
	return fmt.Errorf("%w: no open payout has unsigned txid %s: its payout is unknown to the ledger (forgotten "+
		"by a Redis failover before a replica had its commit, abandoned long ago, or never this pool's) and its inputs are not reserved for it "+
		"(%s); nothing was recorded or broadcast. Do not broadcast it by other means: no balance is debited for it, "+
		"so it would pay those balances twice; the next run pays the balances with a new PSBT (docs/payouts.md)",
		ErrPSBTMismatch, unsigned, where)
}

// listed is items in parentheses after a space, or nothing.
func listed(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return " (" + strings.Join(items, ", ") + ")"
}

// checkOutputs is belt and braces next to the unsigned-txid match: the
// outputs must be the recorded amounts to the recorded addresses.
func (p *Processor) checkOutputs(tx *wire.MsgTx, po *Payout) error {
	want := len(po.Outputs)
	if po.ChangeVout >= 0 {
		want++
	}
	if len(tx.TxOut) != want {
		return fmt.Errorf("%w: %d outputs, payout %d has %d", ErrPSBTMismatch, len(tx.TxOut), po.ID, want)
	}
	for i, o := range po.Outputs {
		script, err := recipientScript(o.Address, p.cfg.Params)
		if err != nil {
			return fmt.Errorf("payment: payout %d output %d: %w", po.ID, i, err)
		}
		if tx.TxOut[i].Value != o.Amount || !bytes.Equal(tx.TxOut[i].PkScript, script) {
			return fmt.Errorf("%w: output %d differs from payout %d", ErrPSBTMismatch, i, po.ID)
		}
	}
	if po.ChangeVout >= 0 {
		c := tx.TxOut[po.ChangeVout]
		if c.Value != po.ChangeValue || !bytes.Equal(c.PkScript, p.pool.script) {
			return fmt.Errorf("%w: change output differs from payout %d", ErrPSBTMismatch, po.ID)
		}
	}
	return nil
}
