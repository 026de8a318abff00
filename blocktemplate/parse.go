package blocktemplate

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// ErrBadTemplate is wrapped by every error ParseTemplate returns for a
// malformed or inconsistent template; test for it with errors.Is.
var ErrBadTemplate = errors.New("bad block template")

// rawTemplate mirrors the getblocktemplate result fields Lode uses. Pointers
// tell a missing field from a zero one.
type rawTemplate struct {
	Version                  *int64            `json:"version"`
	PreviousBlockHash        *string           `json:"previousblockhash"`
	Transactions             *[]rawTransaction `json:"transactions"`
	CoinbaseAux              map[string]string `json:"coinbaseaux"`
	CoinbaseValue            *int64            `json:"coinbasevalue"`
	Target                   *string           `json:"target"`
	MinTime                  *int64            `json:"mintime"`
	CurTime                  *int64            `json:"curtime"`
	Bits                     *string           `json:"bits"`
	Height                   *int64            `json:"height"`
	LongPollID               string            `json:"longpollid"`
	Rules                    []string          `json:"rules"`
	DefaultWitnessCommitment *string           `json:"default_witness_commitment"`
}

type rawTransaction struct {
	Data   *string `json:"data"`
	TxID   *string `json:"txid"`
	Hash   *string `json:"hash"`
	Fee    *int64  `json:"fee"`
	Weight *int64  `json:"weight"`
}

func badTemplate(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadTemplate, fmt.Sprintf(format, args...))
}

// ParseTemplate parses and checks the result object of getblocktemplate, as
// returned by Bitcoin Core (txid and hash=wtxid per transaction,
// default_witness_commitment as an output script) or btcd (which may omit
// rules and txid, the txid then being computed from the data, and sends the
// witness commitment as the bare 32-byte hash). Every transaction's data must hash to
// the txid/hash the node gave, bits must agree with target, and the witness
// commitment, when present, must commit to the transactions' wtxids.
func ParseTemplate(raw []byte) (*Template, error) {
	var r rawTemplate
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, badTemplate("decode json: %v", err)
	}
	switch {
	case r.Version == nil:
		return nil, badTemplate("missing version")
	case r.PreviousBlockHash == nil:
		return nil, badTemplate("missing previousblockhash")
	case r.Transactions == nil:
		return nil, badTemplate("missing transactions")
	case r.CoinbaseValue == nil:
		return nil, badTemplate("missing coinbasevalue")
	case r.CurTime == nil:
		return nil, badTemplate("missing curtime")
	case r.Bits == nil:
		return nil, badTemplate("missing bits")
	case r.Height == nil:
		return nil, badTemplate("missing height")
	}
	t := &Template{
		Height:        *r.Height,
		CurTime:       *r.CurTime,
		CoinbaseValue: *r.CoinbaseValue,
		LongPollID:    r.LongPollID,
		Rules:         r.Rules,
		ReceivedAt:    time.Now(),
	}
	// Core's nVersion is an int32 and may print negative; btcd may print it
	// as an unsigned value. Both are the same 32 header bits.
	if *r.Version < math.MinInt32 || *r.Version > math.MaxUint32 {
		return nil, badTemplate("version %d out of range", *r.Version)
	}
	t.Version = uint32(*r.Version)
	if t.Height < 0 || t.Height > math.MaxInt32 {
		return nil, badTemplate("height %d out of range", t.Height)
	}
	if t.CoinbaseValue < 0 || t.CoinbaseValue > 21e6*1e8 {
		return nil, badTemplate("coinbasevalue %d out of range", t.CoinbaseValue)
	}
	if t.CurTime < 0 || t.CurTime > math.MaxUint32 {
		return nil, badTemplate("curtime %d out of range", t.CurTime)
	}
	t.MinTime = 0
	if r.MinTime != nil {
		if *r.MinTime < 0 || *r.MinTime > math.MaxUint32 {
			return nil, badTemplate("mintime %d out of range", *r.MinTime)
		}
		t.MinTime = *r.MinTime
	}
	prev, err := parseDisplayHash(*r.PreviousBlockHash)
	if err != nil {
		return nil, badTemplate("previousblockhash: %v", err)
	}
	t.PrevHash = prev

	if len(*r.Bits) != 8 {
		return nil, badTemplate("bits %q: want 8 hex digits", *r.Bits)
	}
	bits, err := strconv.ParseUint(*r.Bits, 16, 32)
	if err != nil {
		return nil, badTemplate("bits %q: not hex", *r.Bits)
	}
	t.Bits = uint32(bits)
	t.Target = CompactToTarget(t.Bits)
	if t.Target.Sign() <= 0 || t.Target.Cmp(maxTarget) > 0 {
		return nil, badTemplate("bits %s: target not a positive 256-bit number", *r.Bits)
	}
	if r.Target != nil {
		tb, err := hex.DecodeString(*r.Target)
		if err != nil || len(tb) != 32 {
			return nil, badTemplate("target %q: want 64 hex digits", *r.Target)
		}
		if new(big.Int).SetBytes(tb).Cmp(t.Target) != 0 {
			return nil, badTemplate("bits %s and target %s disagree", *r.Bits, *r.Target)
		}
	}

	// coinbaseaux values are hex that BIP22 says go into the scriptSig. Sort
	// the keys so the coinbase does not depend on JSON map order.
	keys := make([]string, 0, len(r.CoinbaseAux))
	for k := range r.CoinbaseAux {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b, err := hex.DecodeString(r.CoinbaseAux[k])
		if err != nil {
			return nil, badTemplate("coinbaseaux %q: bad hex", k)
		}
		t.CoinbaseAux = append(t.CoinbaseAux, b...)
	}

	t.Transactions = make([]Transaction, len(*r.Transactions))
	hasWitness := false
	wtxids := make([]chainhash.Hash, len(*r.Transactions))
	for i, rt := range *r.Transactions {
		tx, witness, err := parseTransaction(rt)
		if err != nil {
			return nil, badTemplate("transaction %d: %v", i, err)
		}
		if witness {
			hasWitness = true
		}
		t.Transactions[i] = tx
		wtxids[i] = tx.WTxID
	}

	if r.DefaultWitnessCommitment != nil {
		script, err := hex.DecodeString(*r.DefaultWitnessCommitment)
		if err != nil {
			return nil, badTemplate("default_witness_commitment: bad hex")
		}
		// Core sends the whole output script; btcd sends only the 32-byte
		// commitment hash.
		if len(script) == chainhash.HashSize {
			script = append(append([]byte(nil), witnessCommitmentPrefix...), script...)
		}
		if len(script) != len(witnessCommitmentPrefix)+chainhash.HashSize || !bytes.HasPrefix(script, witnessCommitmentPrefix) {
			return nil, badTemplate("default_witness_commitment %x: not a witness commitment script", script)
		}
		// A commitment that does not match the transactions would make the
		// block invalid after the miner found it; catch it now.
		if want := WitnessCommitmentScript(wtxids); !bytes.Equal(script, want) {
			return nil, badTemplate("default_witness_commitment %x does not commit to the template's wtxids (want %x)", script, want)
		}
		t.WitnessCommitment = script
	} else if hasWitness {
		return nil, badTemplate("transactions carry witnesses but default_witness_commitment is missing")
	}
	return t, nil
}

// parseTransaction checks one template transaction (txscan.go) and its
// hashes; witness reports whether it has witness data.
func parseTransaction(rt rawTransaction) (tx Transaction, witness bool, err error) {
	if rt.Data == nil {
		return Transaction{}, false, errors.New("missing data")
	}
	data, err := hex.DecodeString(*rt.Data)
	if err != nil {
		return Transaction{}, false, errors.New("data: bad hex")
	}
	sh, err := scanTx(data)
	if err != nil {
		return Transaction{}, false, fmt.Errorf("data: decode: %v", err)
	}
	if sh.coinbase {
		return Transaction{}, false, errors.New("is a coinbase")
	}
	tx = Transaction{Data: data, TxID: sh.txid(data), WTxID: sh.wtxid(data)}
	if rt.TxID != nil {
		want, err := parseDisplayHash(*rt.TxID)
		if err != nil {
			return Transaction{}, false, fmt.Errorf("txid: %v", err)
		}
		if want != tx.TxID {
			return Transaction{}, false, fmt.Errorf("data hashes to txid %s, template says %s", tx.TxID, want)
		}
	}
	if rt.Hash != nil {
		want, err := parseDisplayHash(*rt.Hash)
		if err != nil {
			return Transaction{}, false, fmt.Errorf("hash: %v", err)
		}
		// Older btcd reports the txid as "hash" and sends no "txid".
		oldBtcd := rt.TxID == nil && want == tx.TxID
		if want != tx.WTxID && !oldBtcd {
			return Transaction{}, false, fmt.Errorf("data hashes to wtxid %s, template hash says %s", tx.WTxID, want)
		}
	}
	if rt.Fee != nil {
		if *rt.Fee < 0 {
			return Transaction{}, false, fmt.Errorf("negative fee %d", *rt.Fee)
		}
		tx.Fee = *rt.Fee
	}
	if rt.Weight != nil {
		tx.Weight = *rt.Weight
	} else {
		tx.Weight = int64(sh.strippedSize()*3 + len(data))
	}
	return tx, sh.witness, nil
}

// parseDisplayHash parses 64 hex digits in RPC display order into internal
// order.
func parseDisplayHash(s string) (chainhash.Hash, error) {
	if len(s) != 2*chainhash.HashSize {
		return chainhash.Hash{}, fmt.Errorf("%q: want 64 hex digits", s)
	}
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("%q: %v", s, err)
	}
	return *h, nil
}
