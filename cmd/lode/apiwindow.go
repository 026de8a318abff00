package main

import (
	"context"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts/window"
)

// The API's verifiable PPLNS reads (api.WindowReader), on the same reader
// as the block list: api.Server finds them on Config.Blocks.
var (
	_ api.WindowReader = (*storeReader)(nil)
	_ api.WindowProver = (*storeReader)(nil)
)

// BlockWindow implements api.WindowReader.
func (r *storeReader) BlockWindow(ctx context.Context, hash string) (api.BlockWindow, error) {
	return redisstore.WindowAPI{Store: r.store}.BlockWindow(ctx, hash)
}

// WindowLeaves implements api.WindowReader.
func (r *storeReader) WindowLeaves(ctx context.Context, hash string, fn func(window.Leaf) error) error {
	return redisstore.WindowAPI{Store: r.store}.WindowLeaves(ctx, hash, fn)
}

// WindowProof implements api.WindowProver: a proof from the block's proof
// index, reading only the address's groups of leaves.
func (r *storeReader) WindowProof(ctx context.Context, hash, address string) (*window.Proof, int, bool, error) {
	return redisstore.WindowAPI{Store: r.store}.WindowProof(ctx, hash, address)
}
