package shares

import (
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Share is an accepted share as the ledger records it. Difficulty is the
// target difficulty the share was judged at (what PPLNS credits), not the
// difficulty of its hash.
type Share struct {
	Worker         string    // full username as authorized: "address" or "address.worker"
	Address        string    // payout address (encoded for the configured network)
	WorkerName     string    // the part after the first '.', "" when none
	Difficulty     float64   // credited (target) difficulty
	HashDifficulty float64   // difficulty of the share's hash; for best-share statistics
	JobHeight      int64     // height of the block the job was for
	Time           time.Time // when the server accepted it
	Block          bool      // the share also met the network target
	// BlockHash is the hash (internal order) of the block the share found,
	// when Block: the found block's owner (package blocks) is handed the
	// share's sequence by hash. Absent from the spool otherwise.
	BlockHash *chainhash.Hash `json:",omitempty"`
}
