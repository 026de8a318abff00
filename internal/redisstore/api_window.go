package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// WindowAPI serves the API's verifiable PPLNS reads (api.WindowReader) from
// the store: block window summaries, credits, commitments and archived
// leaves. The daemon's API reader and lodectl's tests use it.
type WindowAPI struct{ Store *Store }

var (
	_ api.WindowReader = WindowAPI{}
	_ api.WindowProver = WindowAPI{}
)

func parseBlockHash(hash string) (chainhash.Hash, error) {
	h, err := chainhash.NewHashFromStr(hash)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("block hash %q: %w", hash, err)
	}
	return *h, nil
}

func windowReadErr(err error) error {
	switch {
	case errors.Is(err, payouts.ErrBlockNotFound):
		return fmt.Errorf("%w: %w", api.ErrNotFound, err)
	case errors.Is(err, payouts.ErrArchivePruned):
		return fmt.Errorf("%w: %w", api.ErrWindowPruned, err)
	}
	return err
}

// BlockWindow implements api.WindowReader.
func (w WindowAPI) BlockWindow(ctx context.Context, hash string) (api.BlockWindow, error) {
	h, err := parseBlockHash(hash)
	if err != nil {
		return api.BlockWindow{}, fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	b, err := w.Store.Block(ctx, h)
	if err != nil {
		return api.BlockWindow{}, windowReadErr(err)
	}
	bw := api.BlockWindow{
		Hash: b.Hash.String(), Height: b.Height, Status: string(b.Status),
		FindingSeq: b.FindingSeq, Boundary: b.WindowBoundary, Truncated: b.WindowTruncated,
		FirstSeq: b.WindowFirstSeq, LastSeq: b.WindowLastSeq,
		Leaves: b.WindowLeaves, CommittedIn: b.CommittedIn, Pruned: b.ArchivePruned,
		Credits: map[string]int64{},
	}
	if b.WindowLimit != nil {
		bw.Limit = b.WindowLimit.String()
	}
	if b.WindowUnits != nil {
		bw.Total = b.WindowUnits.String()
	}
	if b.WindowRoot != nil {
		bw.Root = b.WindowRoot.String()
	}
	if b.Status == payouts.StatusCredited {
		bw.Credited, bw.Reward, bw.Fee = true, b.Reward, b.Fee
		if bw.Credits, err = w.Store.BlockCredits(ctx, h); err != nil {
			return api.BlockWindow{}, err
		}
	}
	hashes, commits, err := w.Store.BlockCommits(ctx, h)
	if err != nil {
		return api.BlockWindow{}, err
	}
	for i, c := range commits {
		bw.Commits = append(bw.Commits, api.CommittedWindow{Block: hashes[i], Root: c.Root.String(), Total: c.Total.String()})
	}
	return bw, nil
}

// WindowLeaves implements api.WindowReader.
func (w WindowAPI) WindowLeaves(ctx context.Context, hash string, fn func(window.Leaf) error) error {
	h, err := parseBlockHash(hash)
	if err != nil {
		return fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	return windowReadErr(w.Store.WindowLeaves(ctx, h, fn))
}

// WindowProof implements api.WindowProver (Store.WindowProof).
func (w WindowAPI) WindowProof(ctx context.Context, hash, address string) (*window.Proof, int, bool, error) {
	h, err := parseBlockHash(hash)
	if err != nil {
		return nil, 0, false, fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	p, contributors, ok, err := w.Store.WindowProof(ctx, h, address)
	if err != nil {
		return nil, 0, false, windowReadErr(err)
	}
	return p, int(contributors), ok, nil
}
