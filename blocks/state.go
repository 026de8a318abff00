package blocks

import "fmt"

// State is where a found block is in its life. The journal (this package)
// carries a block from StateJournaled to StateRecorded; from there its
// record in the store goes on (payouts.BlockStatus: pending, immature, then
// credited or orphaned, moved by payouts.Unlocker), and its window root is
// committed by the coinbase of a later block of the pool (CommittedIn).
//
//	journaled ──node has it──▶ accepted ──record taken──▶ recorded
//	    │                                   (window snapshotted to the finding share,
//	    └──chain passed its height──▶ stale   archived, root stored, commitments noted)
type State int

// States, in the order a block normally goes through them.
const (
	// StateJournaled: the block is in the journal (fsynced) and was
	// submitted, but no node has confirmed it yet; it is submitted again
	// (Submitter.Recover) until the chain has it or has passed its height.
	StateJournaled State = iota
	// StateAccepted: a node has the block; its record (the PPLNS snapshot)
	// is not taken yet. It stays in the journal, with its finder and the
	// sequence of its finding share, until it is.
	StateAccepted
	// StateRecorded: the block's record exists: its window was snapshotted
	// (ending at the finding share), archived, its Merkle-sum root stored
	// and the windows its own coinbase commits marked. The block leaves the
	// journal at the next compaction.
	StateRecorded
	// StateStale: the chain moved past the block's height with another
	// block before any node took it; it is never recorded.
	StateStale
)

var stateNames = [...]string{"journaled", "accepted", "recorded", "stale"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}
