package payment

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"sort"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// scriptKind is the type of the pool's address, which decides how inputs are
// signed and how much they weigh.
type scriptKind int

const (
	kindP2PKH scriptKind = iota
	kindP2WPKH
	kindP2TR
)

func (k scriptKind) String() string {
	switch k {
	case kindP2PKH:
		return "p2pkh"
	case kindP2WPKH:
		return "p2wpkh"
	default:
		return "p2tr"
	}
}

// inputExtraWeight is the weight a signed input adds to the unsigned
// serialization (empty scriptSig, no witness), with a maximal 73-byte DER
// signature so the fee is never short.
func (k scriptKind) inputExtraWeight() int64 {
	switch k {
	case kindP2PKH:
		return 4 * (1 + 73 + 1 + 33) // push sig, push pubkey in the scriptSig
	case kindP2WPKH:
		return 1 + 1 + 73 + 1 + 33 // witness: item count, sig, pubkey
	default:
		return 1 + 1 + 64 // witness: item count, schnorr sig (SIGHASH_DEFAULT)
	}
}

func (k scriptKind) segwit() bool { return k != kindP2PKH }

type poolOutput struct {
	kind   scriptKind
	script []byte
}

// poolScript decodes the pool address and checks it is a kind the processor
// can spend.
func poolScript(address string, params *chaincfg.Params) (poolOutput, error) {
	a, err := btcutil.DecodeAddress(address, params)
	if err != nil || !a.IsForNet(params) {
		return poolOutput{}, fmt.Errorf("pool address %q is not a valid %s address", address, params.Name)
	}
	var kind scriptKind
	switch a.(type) {
	case *btcutil.AddressPubKeyHash:
		kind = kindP2PKH
	case *btcutil.AddressWitnessPubKeyHash:
		kind = kindP2WPKH
	case *btcutil.AddressTaproot:
		kind = kindP2TR
	default:
		return poolOutput{}, fmt.Errorf("pool address %q: only P2PKH, P2WPKH and P2TR are supported", address)
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return poolOutput{}, fmt.Errorf("pool address %q: %w", address, err)
	}
	return poolOutput{kind: kind, script: script}, nil
}

// keyScript is the output script of key for the given kind (compressed key;
// BIP86 key-path tweak for taproot).
func keyScript(key *btcec.PrivateKey, kind scriptKind, params *chaincfg.Params) ([]byte, error) {
	pub := key.PubKey()
	var a btcutil.Address
	var err error
	switch kind {
	case kindP2PKH:
		a, err = btcutil.NewAddressPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), params)
	case kindP2WPKH:
		a, err = btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), params)
	default:
		a, err = btcutil.NewAddressTaproot(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub)), params)
	}
	if err != nil {
		return nil, err
	}
	return txscript.PayToAddrScript(a)
}

func keyMatchesAddress(key *btcec.PrivateKey, address string, params *chaincfg.Params) error {
	po, err := poolScript(address, params)
	if err != nil {
		return err
	}
	s, err := keyScript(key, po.kind, params)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if !bytes.Equal(s, po.script) {
		return errors.New("signing key does not belong to the pool address")
	}
	return nil
}

// recipientScript decodes a balance's address. Only addresses of the pool's
// network with a standard output script are paid.
func recipientScript(address string, params *chaincfg.Params) ([]byte, error) {
	a, err := btcutil.DecodeAddress(address, params)
	if err != nil {
		return nil, fmt.Errorf("not a valid address: %w", err)
	}
	if !a.IsForNet(params) {
		return nil, fmt.Errorf("not an address of network %s", params.Name)
	}
	switch a.(type) {
	case *btcutil.AddressPubKeyHash, *btcutil.AddressScriptHash, *btcutil.AddressWitnessPubKeyHash,
		*btcutil.AddressWitnessScriptHash, *btcutil.AddressTaproot:
	default:
		return nil, errors.New("unsupported address type")
	}
	return txscript.PayToAddrScript(a)
}

// SplitFee divides fee among amounts pro rata, in integer satoshis:
// share_i = floor(fee × amount_i / Σamounts), and the remaining satoshis
// (fewer than len(amounts)) go one each to the largest amounts, ties going
// to the lower index. Outputs are ordered by address, so the rule is
// deterministic for a given batch. The shares sum to fee exactly.
func SplitFee(amounts []int64, fee int64) []int64 {
	shares := make([]int64, len(amounts))
	if fee <= 0 || len(amounts) == 0 {
		return shares
	}
	var total uint64
	for _, a := range amounts {
		total += uint64(a)
	}
	if total == 0 {
		return shares
	}
	var given int64
	for i, a := range amounts {
		// 128-bit product: fee × amount can exceed 2^63.
		hi, lo := bits.Mul64(uint64(fee), uint64(a))
		q, _ := bits.Div64(hi, lo, total)
		shares[i] = int64(q)
		given += shares[i]
	}
	order := make([]int, len(amounts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return amounts[order[x]] > amounts[order[y]] })
	for i := 0; given < fee; i = (i + 1) % len(order) {
		shares[order[i]]++
		given++
	}
	return shares
}

// feeFor is the fee at rate (sat/kvB) for a transaction of the given weight,
// rounded up.
func feeFor(weight, rate int64) int64 {
	vsize := (weight + 3) / 4
	return (vsize*rate + 999) / 1000
}

// txWeight estimates the signed weight of tx, whose inputs all spend kind.
func txWeight(tx *wire.MsgTx, kind scriptKind) int64 {
	w := int64(tx.SerializeSizeStripped()) * 4
	w += int64(len(tx.TxIn)) * kind.inputExtraWeight()
	if kind.segwit() {
		w += 2 // marker and flag
	}
	return w
}

// batch is one transaction being planned.
type batch struct {
	outputs []Output // by address; Amount final after fee
	scripts [][]byte
	inputs  []UTXO
	tx      *wire.MsgTx
	fee     int64
	change  int64
}

// buildBatch selects coins (largest first) from utxos and builds the
// transaction paying outs. With FeePayerPool recipients get their whole
// debit and the fee is on top; with FeePayerMiners the fee comes out of the
// outputs (SplitFee). Change, if any, is at least dustLimit and goes last.
func buildBatch(outs []Output, scripts [][]byte, utxos []UTXO, pool poolOutput, rate int64, payer FeePayer, maxInputs int) (*batch, error) {
	var debits int64
	for _, o := range outs {
		debits += o.Debit
	}
	// The weight depends on the inputs and on whether there is change, not
	// on the amounts, so a skeleton with placeholder values prices it.
	skeleton := wire.NewMsgTx(2)
	for i, o := range outs {
		skeleton.AddTxOut(wire.NewTxOut(o.Debit, scripts[i]))
	}
	feeWith := func(nIn int, change bool) int64 {
		tx := skeleton.Copy()
		for i := 0; i < nIn; i++ {
			tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{}, nil, nil))
		}
		if change {
			tx.AddTxOut(wire.NewTxOut(0, pool.script))
		}
		return feeFor(txWeight(tx, pool.kind), rate)
	}
	required := func(fee int64) int64 {
		if payer == FeePayerPool {
			return debits + fee
		}
		return debits
	}
	var in int64
	var chosen []UTXO
	for _, u := range utxos {
		if len(chosen) == maxInputs {
			break
		}
		chosen = append(chosen, u)
		in += u.Value
		if f := feeWith(len(chosen), false); in == required(f) {
			return finishBatch(outs, scripts, chosen, pool, payer, f, 0)
		}
		if f := feeWith(len(chosen), true); in-required(f) >= dustLimit {
			return finishBatch(outs, scripts, chosen, pool, payer, f, in-required(f))
		}
	}
	return nil, fmt.Errorf("%w: %d sat to pay from %d sat in %d usable UTXOs (max %d inputs)",
		ErrInsufficientFunds, debits, sum(utxos), len(utxos), maxInputs)
}

func sum(us []UTXO) int64 {
	var s int64
	for _, u := range us {
		s += u.Value
	}
	return s
}

func finishBatch(outs []Output, scripts [][]byte, inputs []UTXO, pool poolOutput, payer FeePayer, fee, change int64) (*batch, error) {
	outs = append([]Output(nil), outs...)
	if payer == FeePayerMiners {
		amounts := make([]int64, len(outs))
		for i, o := range outs {
			amounts[i] = o.Debit
		}
		for i, s := range SplitFee(amounts, fee) {
			outs[i].Amount = outs[i].Debit - s
			if outs[i].Amount < dustLimit {
				return nil, fmt.Errorf("output to %s would be %d sat after its fee share of %d sat (below %d)",
					outs[i].Address, outs[i].Amount, s, dustLimit)
			}
		}
	} else {
		for i := range outs {
			outs[i].Amount = outs[i].Debit
		}
	}
	tx := wire.NewMsgTx(2)
	for _, u := range inputs {
		op := u.OutPoint
		tx.AddTxIn(wire.NewTxIn(&op, nil, nil))
	}
	for i, o := range outs {
		tx.AddTxOut(wire.NewTxOut(o.Amount, scripts[i]))
	}
	if change > 0 {
		tx.AddTxOut(wire.NewTxOut(change, pool.script))
	}
	return &batch{outputs: outs, scripts: scripts, inputs: inputs, tx: tx, fee: fee, change: change}, nil
}

// prevOutFetcher returns the fetcher for signing and verifying tx, whose
// inputs are the pool's UTXOs.
func prevOutFetcher(inputs []UTXO, script []byte) *txscript.MultiPrevOutFetcher {
	f := txscript.NewMultiPrevOutFetcher(nil)
	for _, u := range inputs {
		f.AddPrevOut(u.OutPoint, wire.NewTxOut(u.Value, script))
	}
	return f
}

// signTx signs every input of tx with key (all inputs pay pool.script).
func signTx(tx *wire.MsgTx, inputs []UTXO, pool poolOutput, key *btcec.PrivateKey) error {
	fetcher := prevOutFetcher(inputs, pool.script)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, u := range inputs {
		switch pool.kind {
		case kindP2PKH:
			sig, err := txscript.SignatureScript(tx, i, pool.script, txscript.SigHashAll, key, true)
			if err != nil {
				return fmt.Errorf("sign input %d: %w", i, err)
			}
			tx.TxIn[i].SignatureScript = sig
		case kindP2WPKH:
			wit, err := txscript.WitnessSignature(tx, hashes, i, u.Value, pool.script, txscript.SigHashAll, key, true)
			if err != nil {
				return fmt.Errorf("sign input %d: %w", i, err)
			}
			tx.TxIn[i].Witness = wit
		case kindP2TR:
			wit, err := txscript.TaprootWitnessSignature(tx, hashes, i, u.Value, pool.script, txscript.SigHashDefault, key)
			if err != nil {
				return fmt.Errorf("sign input %d: %w", i, err)
			}
			tx.TxIn[i].Witness = wit
		}
	}
	return verifyTx(tx, inputs, pool.script)
}

// verifyTx runs the script engine on every input: a transaction that would
// not validate is never recorded.
func verifyTx(tx *wire.MsgTx, inputs []UTXO, script []byte) error {
	if len(tx.TxIn) != len(inputs) {
		return fmt.Errorf("transaction has %d inputs, want %d", len(tx.TxIn), len(inputs))
	}
	fetcher := prevOutFetcher(inputs, script)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, u := range inputs {
		if tx.TxIn[i].PreviousOutPoint != u.OutPoint {
			return fmt.Errorf("input %d spends %s, want %s", i, tx.TxIn[i].PreviousOutPoint, u.OutPoint)
		}
		vm, err := txscript.NewEngine(script, tx, i, txscript.StandardVerifyFlags, nil, hashes, u.Value, fetcher)
		if err != nil {
			return fmt.Errorf("verify input %d: %w", i, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("verify input %d: %w", i, err)
		}
	}
	return nil
}
