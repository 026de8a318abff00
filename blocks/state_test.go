package blocks_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/blocks"
)

var allStates = []blocks.State{
	blocks.StateJournaled, blocks.StateAccepted, blocks.StateSnapshotting, blocks.StatePending,
	blocks.StateImmature, blocks.StateCredited, blocks.StateOrphaned, blocks.StateStale,
}

// TestTransitions checks every pair of states against the state machine of
// docs/payouts.md: the legal moves are exactly these, everything else is
// refused with a *TransitionError naming the block and both states.
func TestTransitions(t *testing.T) {
	legal := map[[2]blocks.State]bool{
		{blocks.StateJournaled, blocks.StateAccepted}:    true,
		{blocks.StateJournaled, blocks.StateStale}:       true,
		{blocks.StateAccepted, blocks.StateSnapshotting}: true,
		{blocks.StateSnapshotting, blocks.StatePending}:  true,
		{blocks.StatePending, blocks.StateImmature}:      true,
		{blocks.StatePending, blocks.StateCredited}:      true,
		{blocks.StatePending, blocks.StateOrphaned}:      true,
		{blocks.StateImmature, blocks.StateImmature}:     true, // confirmations updated
		{blocks.StateImmature, blocks.StateCredited}:     true,
		{blocks.StateImmature, blocks.StateOrphaned}:     true,
	}
	hash := chainhash.Hash{1, 2, 3}
	for _, from := range allStates {
		for _, to := range allStates {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				err := blocks.Transition(hash, from, to)
				if legal[[2]blocks.State{from, to}] {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				var te *blocks.TransitionError
				if !errors.As(err, &te) || !errors.Is(err, blocks.ErrIllegalTransition) || te.From != from || te.To != to || te.Hash != hash {
					t.Fatalf("err = %v, want a TransitionError", err)
				}
				if msg := err.Error(); !strings.Contains(msg, hash.String()) || !strings.Contains(msg, string(from)) || !strings.Contains(msg, string(to)) {
					t.Errorf("message %q does not name the block and both states", msg)
				}
			})
		}
	}
	// Named cases of the issue: each refused.
	for _, c := range []struct {
		name     string
		from, to blocks.State
	}{
		{"credited twice", blocks.StateCredited, blocks.StateCredited},
		{"credited after orphaned", blocks.StateOrphaned, blocks.StateCredited},
		{"orphaned after credited", blocks.StateCredited, blocks.StateOrphaned},
		{"orphaned twice", blocks.StateOrphaned, blocks.StateOrphaned},
		{"immature after credited", blocks.StateCredited, blocks.StateImmature},
		{"credited before recorded", blocks.StateAccepted, blocks.StateCredited},
		{"credited while snapshotting", blocks.StateSnapshotting, blocks.StateCredited},
		{"recorded after stale", blocks.StateStale, blocks.StatePending},
		{"unknown state", blocks.State("bogus"), blocks.StateCredited},
		{"no state", "", blocks.StateOrphaned},
	} {
		if err := blocks.Transition(hash, c.from, c.to); !errors.Is(err, blocks.ErrIllegalTransition) {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
}

func TestStateFrom(t *testing.T) {
	for _, c := range []struct {
		to   blocks.State
		want []blocks.State
	}{
		{blocks.StateCredited, []blocks.State{blocks.StatePending, blocks.StateImmature}},
		{blocks.StateOrphaned, []blocks.State{blocks.StatePending, blocks.StateImmature}},
		{blocks.StateImmature, []blocks.State{blocks.StatePending, blocks.StateImmature}},
		{blocks.StatePending, []blocks.State{blocks.StateSnapshotting}},
		{blocks.StateJournaled, nil},
	} {
		if got := blocks.From(c.to); !slices.Equal(got, c.want) {
			t.Errorf("From(%s) = %v, want %v", c.to, got, c.want)
		}
	}
	for _, s := range allStates {
		final := s == blocks.StateCredited || s == blocks.StateOrphaned || s == blocks.StateStale
		if s.Final() != final || !s.Valid() {
			t.Errorf("%s: Final %v Valid %v", s, s.Final(), s.Valid())
		}
	}
	if blocks.State("bogus").Valid() || blocks.State("bogus").Final() {
		t.Error("an unknown state is valid or final")
	}
}
