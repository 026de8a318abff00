package api

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) by readers when the thing asked for does
// not exist, e.g. an address that never submitted a share.
var ErrNotFound = errors.New("not found")

// Hashrates are hashes per second averaged over three windows.
type Hashrates struct {
	TenMinutes float64 `json:"10m"`
	OneHour    float64 `json:"1h"`
	OneDay     float64 `json:"24h"`
}

// PoolStats is what the ledger knows about the pool as a whole.
type PoolStats struct {
	Hashrate Hashrates `json:"hashrate"`
	Miners   int       `json:"miners"`  // payout addresses with a share in the last 24 h
	Workers  int       `json:"workers"` // workers with a share in the last 24 h
	// RoundDifficulty is Σ share difficulty since the pool's last block.
	RoundDifficulty float64 `json:"round_difficulty"`
	// SharesAccepted and SharesRejected count since the stats began.
	SharesAccepted int64     `json:"shares_accepted"`
	SharesRejected int64     `json:"shares_rejected"`
	SharesStale    int64     `json:"shares_stale"`
	LastShare      time.Time `json:"last_share"`
	LastBlock      *Block    `json:"last_block,omitempty"`
}

// Network is the chain tip as the template source sees it.
type Network struct {
	Height     int64   `json:"height"` // height of the block being mined
	Difficulty float64 `json:"difficulty"`
}

// Block statuses, in lifecycle order.
const (
	BlockPending  = "pending"
	BlockImmature = "immature"
	BlockCredited = "credited" // matured; reward credited to balances (the word Redis and lodectl use)
	// Deprecated: BlockMatured is BlockCredited's old name; the API's
	// status was "matured" before it took the ledger's word.
	BlockMatured  = BlockCredited
	BlockOrphaned = "orphaned"
)

// Block is a block found by the pool.
type Block struct {
	Height        int64  `json:"height"`
	Hash          string `json:"hash"`
	Status        string `json:"status"`
	Reward        int64  `json:"reward"` // satoshis: the coinbase value
	Finder        string `json:"finder"` // worker that found it
	Confirmations int64  `json:"confirmations"`
	// FoundAt is when the pool found the block (not the header's time).
	FoundAt time.Time `json:"found_at"`
	// Effort is the round's work ÷ the network difficulty: 1 is a block's
	// worth of expected work, below 1 a lucky block. 0 when unknown.
	Effort float64 `json:"effort"`
	// NetworkDifficulty is the difficulty the block was found at.
	NetworkDifficulty float64 `json:"network_difficulty"`
}

// Worker is one worker's statistics.
type Worker struct {
	Name      string    `json:"name"`              // "" for the address itself
	Address   string    `json:"address,omitempty"` // set in pool-wide lists
	Hashrate  Hashrates `json:"hashrate"`
	Accepted  int64     `json:"accepted"`
	Rejected  int64     `json:"rejected"`
	Stale     int64     `json:"stale"`
	BestShare float64   `json:"best_share"`
	LastShare time.Time `json:"last_share"`
	// RejectRate is (rejected + stale) ÷ all shares the worker sent.
	RejectRate float64 `json:"reject_rate"`
	// Offline: no share for longer than Config.WorkerOfflineAfter.
	Offline bool `json:"offline"`
}

// Payment is one payout to one address.
type Payment struct {
	ID            string    `json:"id"`
	TxID          string    `json:"txid"`
	Address       string    `json:"address"`
	Amount        int64     `json:"amount"` // satoshis
	Status        string    `json:"status"`
	Confirmations int64     `json:"confirmations"`
	Time          time.Time `json:"time"`
	// BroadcastError says why a payout is not on the network yet (the
	// node refused it, or could not be reached); absent otherwise.
	BroadcastError string `json:"broadcast_error,omitempty"`
}

// Miner is everything about one payout address. Workers is one page of its
// workers, sorted by name: WorkersTotal counts them all, WorkersOffset is
// the index of the first one listed (see WorkerPage).
type Miner struct {
	Address string `json:"address"`
	Balance int64  `json:"balance"` // satoshis credited, not yet paid
	// ImmatureBalance is what the blocks found but not yet credited
	// (pending, immature) will credit the address, by their PPLNS
	// snapshots; orphaned blocks would not.
	ImmatureBalance int64 `json:"immature_balance"`
	Paid            int64 `json:"paid"` // satoshis paid in total
	// PayoutThreshold is the balance at which the address is paid: its
	// override (PayoutThresholdOverride) or the pool's default.
	PayoutThreshold         int64 `json:"payout_threshold"`
	PayoutThresholdOverride bool  `json:"payout_threshold_override"`
	// EstimatedPerDay is the satoshis a day the address's 24-hour hashrate
	// earns at the current network difficulty and the last block's reward,
	// after the pool fee (0 when any of them is unknown).
	EstimatedPerDay int64     `json:"estimated_per_day"`
	Hashrate        Hashrates `json:"hashrate"`
	LastShare       time.Time `json:"last_share"`
	WorkersTotal    int       `json:"workers_total"`
	WorkersOffset   int       `json:"workers_offset"`
	Workers         []Worker  `json:"workers"`
	Payments        []Payment `json:"payments"`
	// Credits are the latest blocks that credited the address, newest first.
	Credits []Credit `json:"credits"`
}

// MinerSummary is one payout address in the top-miners list: its workers'
// hashrates summed.
type MinerSummary struct {
	Address   string    `json:"address"`
	Hashrate  Hashrates `json:"hashrate"`
	Workers   int       `json:"workers"`
	LastShare time.Time `json:"last_share"`
}

// MinerLister lists the payout addresses with the highest 10-minute
// hashrate first.
type MinerLister interface {
	TopMiners(ctx context.Context, limit int) ([]MinerSummary, error)
}

// Credit is what one block credited one address.
type Credit struct {
	Height  int64     `json:"height"`
	Hash    string    `json:"hash"`
	Amount  int64     `json:"amount"` // satoshis
	FoundAt time.Time `json:"found_at"`
}

// HashrateSeries is a hashrate history from the share ledger's statistics
// buckets, oldest first: Minutes the last 60 complete minutes, Slots the
// last 143 complete 10-minute slots. It survives restarts.
type HashrateSeries struct {
	Minutes []HashratePoint `json:"minutes"`
	Slots   []HashratePoint `json:"slots"`
}

// SeriesReader reads a hashrate series: the pool's (address ""), one
// address's (worker ""), or one worker's (its name without the address).
type SeriesReader interface {
	HashrateSeries(ctx context.Context, address, worker string) (HashrateSeries, error)
}

// BlockPager and PaymentPager list one page, newest first, with the total
// number of items; when a lister implements them, ?offset= pages.
type BlockPager interface {
	BlocksPage(ctx context.Context, offset, limit int) ([]Block, int, error)
}

// PaymentPager: see BlockPager. Each payout counts as many rows as it has
// outputs; offset and total count payouts.
type PaymentPager interface {
	PaymentsPage(ctx context.Context, offset, limit int) ([]Payment, int, error)
}

// WorkerPage selects the workers a Miner lists: Limit of them from Offset
// in name order.
type WorkerPage struct {
	Offset, Limit int
}

// HashratePoint is one point of a hashrate chart: the sampled 10-minute
// average (pool history), or the bucket from Time (series), in H/s.
type HashratePoint struct {
	Time     time.Time `json:"time"`
	Hashrate float64   `json:"hashrate"`
}

// PoolReader reads pool-wide statistics.
type PoolReader interface {
	PoolStats(ctx context.Context) (PoolStats, error)
}

// BlockLister lists the pool's blocks, newest first.
type BlockLister interface {
	Blocks(ctx context.Context, limit int) ([]Block, error)
}

// MinerReader reads one payout address, with one page of its workers;
// ErrNotFound when it is unknown.
type MinerReader interface {
	Miner(ctx context.Context, address string, page WorkerPage) (Miner, error)
}

// PaymentLister lists payouts, newest first.
type PaymentLister interface {
	Payments(ctx context.Context, limit int) ([]Payment, error)
}

// WorkerLister lists the pool's active workers, highest hashrate first.
type WorkerLister interface {
	Workers(ctx context.Context, limit int) ([]Worker, error)
}

// Banner bans and unbans an IP address or a worker name at the stratum
// frontends. A zero duration means the configured default.
type Banner interface {
	Ban(ctx context.Context, target string, d time.Duration) error
	Unban(ctx context.Context, target string) error
}

// ThresholdSetter sets the payout threshold of one address; zero removes
// the override.
type ThresholdSetter interface {
	SetPayoutThreshold(ctx context.Context, address string, satoshis int64) error
}

// Check is one readiness condition; Run returns nil when it holds.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
	// Advisory checks are reported in /readyz's body but do not make it
	// 503: a condition an operator must act on that is no reason to take
	// traffic away from the process (halted payouts in a process that also
	// serves miners: a load balancer would otherwise pull the miners off).
	Advisory bool
}
