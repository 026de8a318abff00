package blocks_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/blocks"
)

// lostAnswerNode delivers submitblock to the real node but reports a
// transport error and cannot be asked for blocks: the process "died" after
// the node took the block, before the submitter learned it.
type lostAnswerNode struct{ blocks.Node }

func (n lostAnswerNode) SubmitBlockBytes(ctx context.Context, raw []byte) (string, error) {
	if _, err := n.Node.SubmitBlockBytes(ctx, raw); err != nil {
		return "", err
	}
	return "", errors.New("connection reset by peer (injected, after delivery)")
}

func (n lostAnswerNode) GetBlockHeader(context.Context, chainhash.Hash) (*wire.BlockHeader, error) {
	return nil, errors.New("connection refused (injected)")
}

// TestAcceptedBlockStaysUntilRecorded: a block a node accepted stays in the
// journal as unrecorded, with its finder and finding share's sequence,
// across compaction and restarts, until MarkRecorded; then compaction drops
// it.
func TestAcceptedBlockStaysUntilRecorded(t *testing.T) {
	p := newPool(t)

	unrecorded := func(t *testing.T, s *blocks.Submitter) []blocks.Accepted {
		t.Helper()
		got, err := s.Unrecorded()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("finder journaled with the block", func(t *testing.T) {
		journal := filepath.Join(t.TempDir(), "blocks.journal")
		s := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		c, _ := p.mine(t)
		c.Worker = "addr.finder"
		if rep, err := s.Submit(p.ctx, c); err != nil || !rep.Confirmed {
			t.Fatalf("submit: %+v %v", rep, err)
		}
		// A crash right after the node took the block: a new submitter on
		// the same journal still knows who found it.
		s2 := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		got := unrecorded(t, s2)
		if len(got) != 1 || got[0].Hash != c.Hash || got[0].Finder != "addr.finder" {
			t.Fatalf("unrecorded after restart: %+v", got)
		}
	})

	t.Run("confirmed at submit", func(t *testing.T) {
		journal := filepath.Join(t.TempDir(), "blocks.journal")
		s := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		c, tpl := p.mine(t)
		rep, err := s.Submit(p.ctx, c)
		if err != nil || !rep.Confirmed {
			t.Fatalf("submit: %+v %v", rep, err)
		}
		got := unrecorded(t, s)
		if len(got) != 1 || got[0].Hash != c.Hash || got[0].Height != tpl.Height || got[0].Finder != "" || got[0].Seq != "" ||
			got[0].Block.Hash != c.Hash || got[0].Time.IsZero() {
			t.Fatalf("unrecorded after submit: %+v", got)
		}
		if err := s.NoteFinding(c.Hash, tpl.Height, "addr.rig", "i1:9"); err != nil {
			t.Fatal(err)
		}
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		// Restart: a new submitter on the same journal; Recover leaves the
		// accepted block alone and keeps it through its compaction.
		s2 := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		if reps, err := s2.Recover(p.ctx); err != nil || len(reps) != 0 {
			t.Fatalf("recover: %v %v", reps, err)
		}
		got = unrecorded(t, s2)
		if len(got) != 1 || got[0].Hash != c.Hash || got[0].Finder != "addr.rig" || got[0].Height != tpl.Height || got[0].Seq != "i1:9" {
			t.Fatalf("unrecorded after restart: %+v", got)
		}
		if pending, _ := s2.Pending(); len(pending) != 0 {
			t.Fatalf("pending %v", pending)
		}
		if err := s2.MarkRecorded(c.Hash, tpl.Height); err != nil {
			t.Fatal(err)
		}
		if got := unrecorded(t, s2); len(got) != 0 {
			t.Fatalf("unrecorded after MarkRecorded: %+v", got)
		}
		if err := s2.Compact(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(journal); !os.IsNotExist(err) {
			t.Fatalf("journal still there after its last block was recorded: %v", err)
		}
	})

	t.Run("node took it, answer lost, then restart", func(t *testing.T) {
		journal := filepath.Join(t.TempDir(), "blocks.journal")
		s := newSubmitter(t, journal, blocks.NamedNode{Name: "lost", Node: lostAnswerNode{p.client}})
		c, tpl := p.mine(t)
		rep, err := s.Submit(p.ctx, c)
		if err != nil || rep.Confirmed {
			t.Fatalf("submit: %+v %v", rep, err)
		}
		if tip, _ := p.client.GetBestBlockHash(p.ctx); tip != c.Hash {
			t.Fatalf("tip %v, want %v", tip, c.Hash)
		}
		if got := unrecorded(t, s); len(got) != 0 {
			t.Fatalf("unconfirmed block listed as accepted: %+v", got)
		}
		s2 := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		if reps, err := s2.Recover(p.ctx); err != nil || len(reps) != 0 {
			t.Fatalf("recover: %v %v", reps, err)
		}
		// Recover found it in the main chain: it is accepted, and must
		// still be recorded.
		got := unrecorded(t, s2)
		if len(got) != 1 || got[0].Hash != c.Hash || got[0].Height != tpl.Height {
			t.Fatalf("unrecorded after recover: %+v", got)
		}
	})

	t.Run("stale block is never listed", func(t *testing.T) {
		journal := filepath.Join(t.TempDir(), "blocks.journal")
		down := &flakyNode{Node: p.client, failures: 1 << 30}
		s := newSubmitter(t, journal, blocks.NamedNode{Name: "down", Node: down})
		c, _ := p.mine(t)
		if _, err := s.Submit(p.ctx, c); err != nil {
			t.Fatal(err)
		}
		p.node.Generate(1) // someone else wins this height
		s2 := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: p.client})
		if _, err := s2.Recover(p.ctx); err != nil {
			t.Fatal(err)
		}
		if got := unrecorded(t, s2); len(got) != 0 {
			t.Fatalf("stale block listed: %+v", got)
		}
		if _, err := os.Stat(journal); !os.IsNotExist(err) {
			t.Fatalf("journal kept a stale block: %v", err)
		}
	})
}
