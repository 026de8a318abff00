package payment_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/payouts/payment"
)

// signPSBT plays the offline signer: it signs every input of packet with key
// using only what the PSBT carries.
func signPSBT(t *testing.T, packet *psbt.Packet, key *btcec.PrivateKey, kind poolKind) {
	t.Helper()
	u, err := psbt.NewUpdater(packet)
	if err != nil {
		t.Fatal(err)
	}
	tx := packet.UnsignedTx
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	prevs := make([]*wire.TxOut, len(tx.TxIn))
	for i, in := range packet.Inputs {
		op := tx.TxIn[i].PreviousOutPoint
		switch {
		case in.WitnessUtxo != nil:
			prevs[i] = in.WitnessUtxo
		case in.NonWitnessUtxo != nil:
			if in.NonWitnessUtxo.TxHash() != op.Hash {
				t.Fatalf("input %d: non-witness utxo is not the spent transaction", i)
			}
			prevs[i] = in.NonWitnessUtxo.TxOut[op.Index]
		default:
			t.Fatalf("input %d carries no utxo", i)
		}
		fetcher.AddPrevOut(op, prevs[i])
	}
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	pub := key.PubKey().SerializeCompressed()
	for i, prev := range prevs {
		switch kind {
		case p2pkh:
			sig, err := txscript.RawTxInSignature(tx, i, prev.PkScript, txscript.SigHashAll, key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Sign(i, sig, pub, nil, nil); err != nil {
				t.Fatalf("sign input %d: %v", i, err)
			}
		case p2wpkh:
			sig, err := txscript.RawTxInWitnessSignature(tx, hashes, i, prev.Value, prev.PkScript, txscript.SigHashAll, key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Sign(i, sig, pub, nil, nil); err != nil {
				t.Fatalf("sign input %d: %v", i, err)
			}
		case p2tr:
			sig, err := txscript.RawTxInTaprootSignature(tx, hashes, i, prev.Value, prev.PkScript, []byte{}, txscript.SigHashDefault, key)
			if err != nil {
				t.Fatal(err)
			}
			packet.Inputs[i].TaprootKeySpendSig = sig
		}
	}
}

func TestColdPSBTRoundTrip(t *testing.T) { forEachNode(t, testColdPSBTRoundTrip) }

func testColdPSBTRoundTrip(t *testing.T, nodeKind string) {
	for _, kind := range []poolKind{p2pkh, p2wpkh, p2tr} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, nodeKind, kind, 2)
			ctx := context.Background()
			want := map[string]int64{}
			for i := 0; i < 4; i++ {
				want[recipient(t, i, e.params)] = int64(4_000_000 + i*777_777)
			}
			e.seed(want)
			p := e.processor(e.config(payment.ModeCold))
			res, err := p.RunOnce(ctx, false)
			if err != nil || len(res.Payouts) != 2 {
				t.Fatalf("cold run: %v, %d payouts", err, len(res.Payouts))
			}
			for _, po := range res.Payouts {
				if po.State != payment.StateUnsigned || po.PSBT == "" || po.RawTx != "" {
					t.Fatalf("payout %d: state %s, psbt %d bytes, raw %q", po.ID, po.State, len(po.PSBT), po.RawTx)
				}
			}
			e.checkLedger()
			if again, err := p.RunOnce(ctx, false); err != nil || len(again.Payouts) != 0 || again.Open != 2 {
				t.Fatalf("second cold run: %v, %d payouts, %d open", err, len(again.Payouts), again.Open)
			}

			for _, po := range res.Payouts {
				packet, err := payment.ReadPSBT(strings.NewReader(po.PSBT))
				if err != nil {
					t.Fatal(err)
				}
				// Not signed yet: refused, nothing recorded.
				if _, err := p.BroadcastPSBT(ctx, packet); !errors.Is(err, payment.ErrPSBTMismatch) {
					t.Fatalf("unsigned psbt: err = %v, want ErrPSBTMismatch", err)
				}
				packet, _ = payment.ReadPSBT(strings.NewReader(po.PSBT))
				signPSBT(t, packet, e.key, kind)
				// A PSBT for other amounts is no payout of ours.
				var buf bytes.Buffer
				if err := packet.Serialize(&buf); err != nil {
					t.Fatal(err)
				}
				forged, _ := payment.ReadPSBT(bytes.NewReader(buf.Bytes())) // binary form
				forged.UnsignedTx.TxOut[0].Value++
				if _, err := p.BroadcastPSBT(ctx, forged); !errors.Is(err, payment.ErrPSBTMismatch) {
					t.Fatalf("forged psbt: err = %v, want ErrPSBTMismatch", err)
				}
				got, err := p.BroadcastPSBT(ctx, packet)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != payment.StateBroadcast || got.RawTx == "" {
					t.Fatalf("after broadcast: %+v", got)
				}
				if kind != p2pkh && got.TxID != po.TxID {
					t.Fatalf("segwit txid changed by signing: %s → %s", po.TxID, got.TxID)
				}
				// Handing the same signed PSBT in again is harmless.
				again, _ := payment.ReadPSBT(bytes.NewReader(buf.Bytes()))
				if _, err := p.BroadcastPSBT(ctx, again); err != nil {
					t.Fatalf("second broadcast of the same psbt: %v", err)
				}
			}
			e.chain.Generate(1)
			res, err = p.RunOnce(ctx, false)
			if err != nil || res.Open != 0 || len(res.Resolved) != 2 {
				t.Fatalf("after a block: %v, open %d, resolved %d", err, res.Open, len(res.Resolved))
			}
			got := e.received()
			for a, v := range want {
				if got[a] != v {
					t.Errorf("%s received %d, want %d", a, got[a], v)
				}
			}
			e.checkLedger()
			// A confirmed payout's PSBT handed in again is refused naming it.
			late, _ := payment.ReadPSBT(strings.NewReader(res.Resolved[0].PSBT))
			signPSBT(t, late, e.key, kind)
			if _, err := p.BroadcastPSBT(ctx, late); !errors.Is(err, payment.ErrPSBTMismatch) ||
				!strings.Contains(err.Error(), "is confirmed") {
				t.Errorf("psbt of a confirmed payout: %v, want it refused as confirmed", err)
			}
		})
	}
}

// TestHotSegwitAndTaprootPools signs with P2WPKH and P2TR pool keys.
func TestHotSegwitAndTaprootPools(t *testing.T) { forEachNode(t, testHotSegwitAndTaprootPools) }

func testHotSegwitAndTaprootPools(t *testing.T, nodeKind string) {
	for _, kind := range []poolKind{p2wpkh, p2tr} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, nodeKind, kind, 3)
			ctx := context.Background()
			want := map[string]int64{}
			for i := 0; i < 7; i++ {
				want[recipient(t, i, e.params)] = int64(1_100_000 + i*3_210_987)
			}
			e.seed(want)
			p := e.processor(e.config(payment.ModeHot))
			res, err := p.RunOnce(ctx, false)
			if err != nil || len(res.Payouts) != 3 {
				t.Fatalf("run: %v, %d payouts", err, len(res.Payouts))
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
			e.checkLedger()
		})
	}
}
