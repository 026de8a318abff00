package ledger

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/lode-pool/lode/shares"
)

// Store applies batches of recorded shares. internal/redisstore implements it.
type Store interface {
	// ApplyBatch writes b atomically and idempotently: if b.Seq is not above
	// the high-water mark already applied for b.Instance, the batch (or the
	// part of it already applied) is skipped. windowLimit is the PPLNS window
	// size N in diff units ("0": keep the last limit the store saw). It
	// returns nil only once the store acknowledged the write. The store must
	// not keep b after it returns.
	ApplyBatch(ctx context.Context, b *Batch, windowLimit string) error
	// HighWater returns the highest batch sequence number applied for
	// instance (0 when none).
	HighWater(ctx context.Context, instance string) (uint64, error)
}

// Batch is the unit of a group commit, of the spool, and of idempotency.
type Batch struct {
	// Instance identifies the process that recorded the batch.
	Instance string `json:"i"`
	// Seq is above the Seq of every share in the batch and of every earlier
	// batch of the same instance.
	Seq     uint64   `json:"s"`
	Shares  []Entry  `json:"e,omitempty"`
	Rejects []Reject `json:"r,omitempty"`
	// Kind says which parts the Store applies (BatchFull for batches
	// spooled before kinds existed).
	Kind BatchKind `json:"k,omitempty"`
}

// BatchKind selects the parts of a Batch the Store applies.
type BatchKind int

const (
	// BatchFull: the accounting of the shares (PPLNS window, round
	// totals) and their statistics, and the rejects.
	BatchFull BatchKind = iota
	// BatchAccounting: the accounting of the shares only. This is what a
	// miner waits for before hearing true.
	BatchAccounting
	// BatchStats: the statistics of shares whose accounting earlier
	// batches applied, and the rejects. Written every StatsInterval, so the
	// per-share cost of statistics is paid once per interval, not per
	// group commit.
	BatchStats
)

// Entry is one accepted share with its sequence number and credited
// difficulty in diff units.
type Entry struct {
	Seq   uint64       `json:"q"`
	Units string       `json:"u"`
	Share shares.Share `json:"s"`
}

// Reject counts rejected shares of one worker for one reason.
type Reject struct {
	Worker  string    `json:"w"`
	Address string    `json:"a"`
	Reason  string    `json:"r"` // ReasonStale counts as stale, anything else as rejected
	Count   int64     `json:"n"`
	Time    time.Time `json:"t"` // the latest reject of this group
}

// ReasonStale is the reject reason counted as a stale share.
const ReasonStale = "stale"

// WindowEntry is one entry of the PPLNS window: one or more shares of one
// payout address recorded in the same batch.
type WindowEntry struct {
	Seq     string // instance-seq of the first share the entry holds
	Address string
	Units   string // Σ credited difficulty in diff units
}

// Window is the PPLNS window as stored, newest entry first.
type Window struct {
	Entries []WindowEntry
	Total   string // Σ Units of Entries
	Limit   string // the window size N it was last trimmed to ("0": never)
}

// ByAddress returns Σ Units of the window's entries per address and their
// total (for checks and tools; O(entries)).
func (w Window) ByAddress() (map[string]*big.Int, *big.Int, error) {
	out := map[string]*big.Int{}
	sum := new(big.Int)
	for _, e := range w.Entries {
		u, err := ParseUnits(e.Units)
		if err != nil {
			return nil, nil, fmt.Errorf("window entry %s of %s: %w", e.Seq, e.Address, err)
		}
		if out[e.Address] == nil {
			out[e.Address] = new(big.Int)
		}
		out[e.Address].Add(out[e.Address], u)
		sum.Add(sum, u)
	}
	return out, sum, nil
}

// WorkerStats are the statistics of one worker (full username).
type WorkerStats struct {
	Accepted, Rejected, Stale int64
	LastShare                 time.Time
	BestDifficulty            float64 // best hash difficulty seen
	// Hashrates in hashes per second over the last 10 minutes, 1 hour and
	// 24 hours: Σ credited difficulty × 2^32 / seconds.
	Hashrate10m, Hashrate1h, Hashrate24h float64
}
