package blocktemplate

import (
	"context"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// TemplateSource is the node as the Manager sees it; blocktemplate/bitcoind
// implements it. Methods are called from several goroutines at once.
type TemplateSource interface {
	// GetBlockTemplate returns the raw getblocktemplate result object. With
	// a non-empty longPollID it blocks until the node has a newer template
	// (or the source's own long-poll timeout passes).
	GetBlockTemplate(ctx context.Context, longPollID string) ([]byte, error)
	// GetBestBlockHash returns the node's tip (internal order).
	GetBestBlockHash(ctx context.Context) (chainhash.Hash, error)
}
