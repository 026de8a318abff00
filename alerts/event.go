package alerts

import (
	"fmt"
	"time"
)

// Event types.
const (
	WorkerOffline = "worker_offline" // no accepted share for alerts.worker_offline
	WorkerOnline  = "worker_online"  // an offline worker sends shares again
	BlockFound    = "block_found"
	BlockOrphaned = "block_orphaned"
	PayoutSent    = "payout_sent"  // the node accepted a payout transaction
	PayoutStuck   = "payout_stuck" // unconfirmed past payouts.unconfirmed_alert
	Unhealthy     = "unhealthy"    // a check (node, redis, payouts) started failing
	Recovered     = "recovered"    // and passes again
)

// MinerEvents are the types a miner's subscription can receive (those
// about its address, and blocks); the operator's channels receive every
// type.
var MinerEvents = []string{WorkerOffline, WorkerOnline, PayoutSent, PayoutStuck, BlockFound, BlockOrphaned}

// defaultMinerEvents is what a subscription without a list gets.
var defaultMinerEvents = []string{WorkerOffline, WorkerOnline, PayoutSent, PayoutStuck}

// Event is one notification, as JSON in webhooks.
type Event struct {
	// ID is unique per delivery and stable across its retries (the
	// webhook's X-Lode-Event-Id).
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Address is the payout address the event is about ("" for pool-wide
	// events): subscriptions of that address receive it.
	Address string `json:"address,omitempty"`
	Worker  string `json:"worker,omitempty"`
	// Block events.
	Height int64  `json:"height,omitempty"`
	Hash   string `json:"hash,omitempty"`
	// Payout events.
	TxID   string `json:"txid,omitempty"`
	Amount int64  `json:"amount_sat,omitempty"`
	// Check is the failing or recovered check (node, redis, payouts, …).
	Check string `json:"check,omitempty"`
	// LastShare of a worker event.
	LastShare *time.Time `json:"last_share,omitempty"`
	// Message says it in one line, for people (chat, email).
	Message string `json:"message"`
}

// pool-wide events go to every subscription that lists them.
func (e Event) poolWide() bool { return e.Type == BlockFound || e.Type == BlockOrphaned }

func describe(e *Event) {
	if e.Message != "" {
		return
	}
	switch e.Type {
	case WorkerOffline:
		e.Message = fmt.Sprintf("worker %s is offline: no accepted share since %s", e.Worker, e.LastShare.UTC().Format(time.RFC3339))
	case WorkerOnline:
		e.Message = fmt.Sprintf("worker %s is back online", e.Worker)
	case BlockFound:
		e.Message = fmt.Sprintf("block %d found by %s (%s)", e.Height, e.Worker, e.Hash)
	case BlockOrphaned:
		e.Message = fmt.Sprintf("block %d orphaned (%s): no reward", e.Height, e.Hash)
	case PayoutSent:
		e.Message = fmt.Sprintf("payout of %d sat to %s sent in %s", e.Amount, e.Address, e.TxID)
	case PayoutStuck:
		e.Message = fmt.Sprintf("payout of %d sat to %s is stuck unconfirmed (%s)", e.Amount, e.Address, e.TxID)
	}
}
