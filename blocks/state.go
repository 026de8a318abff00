package blocks

import (
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// State is where a found block is in its life: one state machine, keyed by
// the block hash, from the candidate to its credit or orphaning. The journal
// (this package) carries a block from StateJournaled to StatePending; from
// there the block's record in the store holds its state (the record's
// status field, docs/redis.md) and the unlocker (payouts.Unlocker) moves it
// on, each move checked by Transition here and again, atomically, by the
// store against From. The window root is committed by the coinbase of a
// later block of the pool (payouts.Block.CommittedIn), whatever the state.
//
//	journaled ──node has it──▶ accepted ──snapshot begun──▶ snapshotting ──record complete──▶ pending
//	    │                              (window fixed at the      (window summed, archived,
//	    │                               finding share, pinned)    root stored)
//	    └──chain passed its height──▶ stale
//
//	pending ──in the main chain──▶ immature ──more confirmations──▶ immature
//	pending, immature ──Maturity confirmations──▶ credited
//	pending, immature ──off the main chain, OrphanDepth deep──▶ orphaned
//
// Stale, credited and orphaned are final: a credited block is never
// orphaned (at Maturity confirmations a reorg is not expected and balances
// may be paid already; there is no reorg rule) and an orphaned one is never
// credited.
//
// A State's value is its name, as the record's status field stores it.
type State string

// States, in the order a block normally goes through them.
const (
	// StateJournaled: the block is in the journal (fsynced) and was
	// submitted, but no node has confirmed it yet; it is submitted again
	// (Submitter.Recover) until the chain has it or has passed its height.
	StateJournaled State = "journaled"
	// StateAccepted: a node has the block; its record (the PPLNS snapshot)
	// is not taken yet. It stays in the journal, with its finder and the
	// sequence of its finding share, until it is.
	StateAccepted State = "accepted"
	// StateSnapshotting: the record is being taken: its window is fixed
	// (ending at the finding share) and pinned, its sums not all written
	// yet (the store's snapshot runs in steps; a crash resumes it). The
	// unlocker and the API do not see such a record.
	StateSnapshotting State = "snapshotting"
	// StatePending: the block's record exists: its window was snapshotted
	// (ending at the finding share), archived, its Merkle-sum root stored
	// and the windows its own coinbase commits marked; the unlocker has not
	// looked at it yet. The journal's line for it says "recorded" and the
	// block leaves the journal at the next compaction.
	StatePending State = "pending"
	// StateImmature: the block is in the main chain with fewer than the
	// unlocker's Maturity confirmations (a block may stay immature over
	// many steps: its confirmations are updated).
	StateImmature State = "immature"
	// StateCredited: the block matured; its reward was split over its
	// window and credited to the balances, exactly once. Final.
	StateCredited State = "credited"
	// StateOrphaned: the block left the main chain before it matured; it
	// is never credited. Final.
	StateOrphaned State = "orphaned"
	// StateStale: the chain moved past the block's height with another
	// block before any node took it; it is never recorded. Final.
	StateStale State = "stale"
)

// StateRecorded is the journal's name for StatePending: the record is
// taken.
const StateRecorded = StatePending

// next lists the legal transitions out of each state. immature → immature
// is legal: the unlocker updates a young block's confirmations.
func (s State) next() []State {
	switch s {
	case StateJournaled:
		return []State{StateAccepted, StateStale}
	case StateAccepted:
		return []State{StateSnapshotting}
	case StateSnapshotting:
		return []State{StatePending}
	case StatePending, StateImmature:
		return []State{StateImmature, StateCredited, StateOrphaned}
	}
	return nil // final, or not a state
}

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	switch s {
	case StateJournaled, StateAccepted, StateSnapshotting, StatePending, StateImmature, StateCredited, StateOrphaned, StateStale:
		return true
	}
	return false
}

// Final reports whether no transition leaves s.
func (s State) Final() bool { return s.Valid() && len(s.next()) == 0 }

func (s State) String() string { return string(s) }

// ErrIllegalTransition is matched (errors.Is) by every *TransitionError.
var ErrIllegalTransition = errors.New("blocks: illegal state transition")

// TransitionError is a refused move of one block from one state to
// another: the block was credited already, orphaned already, or is not
// where the move starts.
type TransitionError struct {
	Hash     chainhash.Hash
	From, To State
}

func (e *TransitionError) Error() string {
	from := e.From
	if from == "" {
		from = "(no state)"
	}
	return fmt.Sprintf("blocks: block %s cannot go from %s to %s", e.Hash, from, e.To)
}

// Is makes errors.Is(err, ErrIllegalTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrIllegalTransition }

// Transition checks one move of block hash from state from to state to. It
// returns nil when the move is legal and a *TransitionError otherwise.
func Transition(hash chainhash.Hash, from, to State) error {
	for _, n := range from.next() {
		if n == to {
			return nil
		}
	}
	return &TransitionError{Hash: hash, From: from, To: to}
}

// From returns the states from which a block may move to to, for a store
// that checks the transition atomically with its writes (the record's
// status must be one of them).
func From(to State) []State {
	var out []State
	for _, s := range []State{StateJournaled, StateAccepted, StateSnapshotting, StatePending, StateImmature, StateCredited, StateOrphaned, StateStale} {
		if Transition(chainhash.Hash{}, s, to) == nil {
			out = append(out, s)
		}
	}
	return out
}
