package blocktemplate

import (
	"math/big"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Template is a parsed and checked getblocktemplate result. Hashes are kept in
// internal byte order (the raw SHA256d output), not the RPC display order.
type Template struct {
	Height            int64
	Version           uint32
	PrevHash          chainhash.Hash
	Bits              uint32
	Target            *big.Int // expanded from Bits; checked against the template's target field when present
	CurTime           int64
	MinTime           int64
	CoinbaseValue     int64  // satoshis: subsidy + fees
	CoinbaseAux       []byte // concatenated coinbaseaux values, pushed into the scriptSig
	WitnessCommitment []byte // full output script (6a24aa21a9ed…); nil when the template has none
	Transactions      []Transaction
	LongPollID        string
	Rules             []string
	ReceivedAt        time.Time
}

// Transaction is one template transaction, in template order.
type Transaction struct {
	Data   []byte         // serialized as the node gave it (witness form when it has witnesses)
	TxID   chainhash.Hash // internal order; merkle leaf
	WTxID  chainhash.Hash // internal order
	Fee    int64
	Weight int64
}

// Job is one unit of Stratum work (one mining.notify). It is immutable once
// built: share validation on many connections reads it concurrently.
type Job struct {
	ID        string // Stratum job id, unique within the process
	CleanJobs bool   // true when this job starts a new prevhash

	Height   int64
	PrevHash chainhash.Hash // internal order (as in the header)

	// Coinbase split around the extranonce slot (non-witness serialization):
	// coinbase = Coinb1 ‖ extranonce1 ‖ extranonce2 ‖ Coinb2.
	Coinb1          []byte
	Coinb2          []byte
	Extranonce1Size int
	Extranonce2Size int

	MerkleBranch []chainhash.Hash // internal order, leaf to root

	Version uint32 // template version with the pool's version-rolling mask bits cleared
	Bits    uint32
	NTime   uint32 // template curtime
	MinTime uint32 // template mintime; submitted ntime below it is rejected

	NetworkTarget *big.Int

	// Template is what the job was built from; it carries the transactions
	// needed to assemble a full block. Nil for a job rebuilt from a notify
	// (lodectl share-check), which can validate shares but not build blocks.
	Template *Template
	// CoinbaseWitness is true when the block must carry the witness reserved
	// value in the coinbase witness (the template has a witness commitment).
	CoinbaseWitness bool

	CreatedAt time.Time
	// TipSeenAt is when the event that told us about this job's prevhash was
	// seen (longpoll return, ZMQ message, poll, own block); fan-out latency
	// is measured from it. For a refresh job it is that of the job's tip.
	TipSeenAt time.Time
}
