package payment

import (
	"context"
	"errors"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Errors callers can test with errors.Is.
var (
	// ErrInsufficientFunds means the pool's spendable UTXOs cannot pay a batch
	// (outputs plus fee, and a change output above dust when there is change).
	ErrInsufficientFunds = errors.New("payment: insufficient pool funds")
	// ErrConflict means a balance, UTXO or fee account changed between planning
	// and commit; the store wrote nothing and the run can simply be retried.
	ErrConflict = errors.New("payment: ledger changed during commit")
	// ErrNotFound means no payout has the requested id.
	ErrNotFound = errors.New("payment: payout not found")
	// ErrWrongState means the payout is not in a state the operation accepts.
	ErrWrongState = errors.New("payment: payout in wrong state")
	// ErrPSBTMismatch means a signed PSBT is not the one written for a payout,
	// or does not finalize into a valid transaction.
	ErrPSBTMismatch = errors.New("payment: psbt does not match an unsigned payout")
	// ErrHalted means new payouts were not committed because earlier ones
	// are not on the network (their broadcast failed): every new payout
	// debits balances, so none is added until the node takes the earlier
	// transactions or the operator abandons them.
	ErrHalted = errors.New("payment: new payouts halted")
)

// State is where a payout is in its life.
type State string

const (
	// StateUnsigned: cold mode; balances are debited and UTXOs reserved, the
	// PSBT waits for the offline signer.
	StateUnsigned State = "unsigned"
	// StatePending: signed and recorded, not yet known to be accepted by the
	// node (the process may have died before or during broadcast).
	StatePending State = "pending"
	// StateBroadcast: the node accepted the transaction (or already had it).
	StateBroadcast State = "broadcast"
	// StateStuck: still unconfirmed after Config.StuckAfter; the processor
	// keeps re-broadcasting and tracking it, the operator should look.
	StateStuck State = "stuck"
	// StateConfirmed: the transaction has Config.Confirmations confirmations;
	// its change output (if any) is a pool UTXO again.
	StateConfirmed State = "confirmed"
	// StateAbandoned: the operator gave the debits back (Processor.Abandon)
	// because the transaction was never broadcast or can never confirm.
	StateAbandoned State = "abandoned"
)

// Open reports whether the payout still needs the processor's attention.
func (s State) Open() bool { return s != StateConfirmed && s != StateAbandoned }

// FeePayer says who bears the network fee of a payout transaction.
type FeePayer string

const (
	// FeePayerPool: recipients get their full debited amount; the fee is
	// debited from the pool's fee account (Store.FeeBalance).
	FeePayerPool FeePayer = "pool"
	// FeePayerMiners: the fee is deducted from the outputs pro rata to their
	// amounts, in integer satoshis; see SplitFee for the remainder rule.
	FeePayerMiners FeePayer = "miners"
)

// Output is one recipient of a payout.
type Output struct {
	Address string `json:"address"`
	// Debit is what was taken from the address's balance.
	Debit int64 `json:"debit"`
	// Amount is what the transaction pays the address (Debit minus its fee
	// share when miners pay the fee).
	Amount int64 `json:"amount"`
}

// UTXO is a pool output the processor may spend. The unlocker records matured
// coinbase outputs; confirmed payouts give their change back.
type UTXO struct {
	OutPoint wire.OutPoint
	Value    int64
}

// Key is the UTXO's field name in the store: "txid:vout".
func (u UTXO) Key() string { return u.OutPoint.String() }

// Input is a UTXO spent by a payout, as recorded.
type Input struct {
	OutPoint string `json:"outpoint"`
	Value    int64  `json:"value"`
}

// Payout is the durable record of one payout transaction.
type Payout struct {
	ID    int64 `json:"id"`
	State State `json:"state"`

	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	BroadcastAt time.Time `json:"broadcast_at,omitzero"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`

	// TxID is the id of the signed transaction (empty while a cold payout
	// spending non-witness inputs is unsigned).
	TxID string `json:"txid,omitempty"`
	// UnsignedTxID is the hash of the transaction without signatures; it
	// identifies a PSBT's payout.
	UnsignedTxID string `json:"unsigned_txid"`
	// RawTx is the signed transaction in hex: what is (re-)broadcast.
	RawTx string `json:"raw_tx,omitempty"`
	// PSBT is the unsigned PSBT (base64), cold mode only.
	PSBT string `json:"psbt,omitempty"`

	FeeRate  int64    `json:"fee_rate"` // sat per 1000 vbytes
	Fee      int64    `json:"fee"`
	FeePayer FeePayer `json:"fee_payer"`
	// FeeAccountDebit is what the fee account paid (the fee when the pool
	// pays it, 0 otherwise).
	FeeAccountDebit int64 `json:"fee_account_debit"`

	Outputs []Output `json:"outputs"`
	Inputs  []Input  `json:"inputs"`
	// ChangeVout is the change output's index, -1 when there is none.
	ChangeVout  int   `json:"change_vout"`
	ChangeValue int64 `json:"change_value"`

	Confirmations int64  `json:"confirmations"`
	BlockHash     string `json:"block_hash,omitempty"`
	// LastError is why the last broadcast of the transaction failed; it
	// is cleared once the node has the transaction (nothing else sets it).
	LastError string `json:"last_error,omitempty"`
	// Refusal is the node's reason when it refused the transaction (an RPC
	// error such as "bad-txns-inputs-missingorspent" or "min relay fee not
	// met"); empty when the node could not be asked (down, timeout).
	Refusal string `json:"refusal,omitempty"`
	// BroadcastFailures counts the failed broadcasts since the node last
	// had the transaction.
	BroadcastFailures int `json:"broadcast_failures,omitempty"`
}

// BroadcastFailed reports whether the payout is signed, open, and its last
// broadcast failed: the node does not have it. New payouts wait for it.
func (p *Payout) BroadcastFailed() bool {
	return p.State.Open() && p.State != StateUnsigned && (p.LastError != "" || p.BroadcastFailures > 0)
}

// BroadcastProblem is why the payout is not on the network, in words fit
// for miners (the public API): the node's refusal reason, or that the node
// could not be reached; empty unless BroadcastFailed. LastError has the
// operator's details.
func (p *Payout) BroadcastProblem() string {
	switch {
	case !p.BroadcastFailed():
		return ""
	case p.Refusal != "":
		return "refused by the node: " + p.Refusal
	}
	return "the pool's node could not be reached; retried every run"
}

// AwaitingBroadcast reports whether the payout is signed but not known to
// be on the network: pending (never accepted) or its last broadcast failed.
func (p *Payout) AwaitingBroadcast() bool {
	return p.State == StatePending || p.BroadcastFailed()
}

// Paid is the total the transaction pays to recipients.
func (p *Payout) Paid() int64 {
	var s int64
	for _, o := range p.Outputs {
		s += o.Amount
	}
	return s
}

// Debited is the total taken from recipients' balances.
func (p *Payout) Debited() int64 {
	var s int64
	for _, o := range p.Outputs {
		s += o.Debit
	}
	return s
}

// Change returns the change output as a UTXO once the txid is known.
func (p *Payout) Change() (UTXO, bool) {
	if p.ChangeVout < 0 || p.ChangeValue <= 0 || p.TxID == "" {
		return UTXO{}, false
	}
	h, err := chainhash.NewHashFromStr(p.TxID)
	if err != nil {
		return UTXO{}, false
	}
	return UTXO{OutPoint: wire.OutPoint{Hash: *h, Index: uint32(p.ChangeVout)}, Value: p.ChangeValue}, true
}

// Totals are the running sums of all committed payouts.
type Totals struct {
	Paid    int64 // paid to recipients
	Fees    int64 // network fees
	Payouts int64 // payouts committed
}

// Store is the accounting store the processor needs. Implementations must
// make CommitPayout, UpdatePayout and ConfirmPayout atomic.
type Store interface {
	// Balances returns every miner balance (address → satoshis).
	Balances(ctx context.Context) (map[string]int64, error)
	// FeeBalance returns the pool's fee account (satoshis), which pays the
	// network fee when the pool pays it.
	FeeBalance(ctx context.Context) (int64, error)
	// Thresholds returns the per-address payout threshold overrides.
	Thresholds(ctx context.Context) (map[string]int64, error)
	// SetThreshold sets (sats > 0) or removes (sats == 0) an override.
	SetThreshold(ctx context.Context, address string, sats int64) error
	// UTXOs returns the pool's spendable (unreserved) outputs.
	UTXOs(ctx context.Context) ([]UTXO, error)
	// NextPayoutID allocates a payout id.
	NextPayoutID(ctx context.Context) (int64, error)
	// CommitPayout atomically checks that every balance in p.Outputs holds
	// at least its Debit, the fee account at least p.FeeAccountDebit, and
	// every input is still a pool UTXO with the recorded value; then debits,
	// removes the inputs from the UTXO set, adds to the totals and writes p.
	// If a check fails nothing is written and the error wraps ErrConflict.
	CommitPayout(ctx context.Context, p *Payout) error
	// EnsureCommitted returns nil once the store holds p in state p.State
	// as durably as a CommitPayout that returned nil (with replicas: that
	// many acknowledge it; else ErrNotFound, ErrWrongState or the store's
	// error). A commit whose acknowledgement failed may stand on one copy
	// only, which a failover can forget; the processor calls this before it
	// broadcasts a payout it did not commit in the same call.
	EnsureCommitted(ctx context.Context, p *Payout) error
	// UpdatePayout writes p if the stored state is one of from (else
	// ErrWrongState; ErrNotFound if absent).
	UpdatePayout(ctx context.Context, p *Payout, from ...State) error
	// ConfirmPayout writes p (state confirmed) and adds its change output
	// to the UTXO set, if the stored state is one of from.
	ConfirmPayout(ctx context.Context, p *Payout, from ...State) error
	// AbandonPayout writes p (state abandoned), closes it, credits every
	// output's Debit back to its balance and FeeAccountDebit to the fee
	// account, subtracts it from the totals and returns the given inputs
	// to the UTXO set, if the stored state is one of from.
	AbandonPayout(ctx context.Context, p *Payout, restore []UTXO, from ...State) error
	// Payout returns one payout (ErrNotFound if absent).
	Payout(ctx context.Context, id int64) (*Payout, error)
	// Payouts returns up to limit payouts, newest first.
	Payouts(ctx context.Context, limit int) ([]*Payout, error)
	// OpenPayouts returns the payouts not yet confirmed, oldest first.
	OpenPayouts(ctx context.Context) ([]*Payout, error)
	// Totals returns the running totals.
	Totals(ctx context.Context) (Totals, error)
}

// TxOut is what the node says about an unspent output.
type TxOut struct {
	Value         int64
	PkScript      []byte
	Confirmations int64
	Coinbase      bool
}

// TxStatus is what the node knows about a transaction.
type TxStatus struct {
	Found         bool // in the mempool or the chain
	Confirmations int64
	BlockHash     string
}

// Node is the Bitcoin node RPC subset the processor needs (btcd or Core).
type Node interface {
	// GetTxOut returns the unspent output, or nil (and no error) when it is
	// spent or unknown. With mempool false only spends in the chain count;
	// with true Core also counts spends in its mempool (btcd does not; a
	// conflicting payout is then refused at broadcast and stays pending).
	GetTxOut(ctx context.Context, op wire.OutPoint, mempool bool) (*TxOut, error)
	// SendRawTransaction broadcasts tx. A transaction the node already has
	// (mempool or chain) is not an error.
	SendRawTransaction(ctx context.Context, tx *wire.MsgTx) error
	// TxStatus looks a transaction up (mempool, then chain via txindex).
	TxStatus(ctx context.Context, txid chainhash.Hash) (TxStatus, error)
	// GetRawTransaction returns a full transaction (PSBT non-witness UTXOs).
	GetRawTransaction(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error)
	// EstimateFeeRate returns the node's fee estimate in satoshis per 1000
	// virtual bytes for confirmation within target blocks.
	EstimateFeeRate(ctx context.Context, target int) (int64, error)
}

// txIndexChecker is a Node that can tell whether confirmed transactions can
// be looked up by txid. Resolving a payout (and deciding that one may be
// abandoned) reads "not found" as "never mined", which is only true with a
// synced transaction index; the processor refuses to work without one.
type txIndexChecker interface {
	CheckTxIndex(ctx context.Context) error
}
