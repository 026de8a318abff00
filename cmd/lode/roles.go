package main

import (
	"context"

	"github.com/lode-pool/lode/api"
)

// apiReaders sets the API's readers from the Redis store.
func (w *wiring) apiReaders(c *api.Config) {
	r := newStoreReader(w.store)
	c.Pool, c.Blocks, c.Miners, c.Payments, c.Workers, c.Thresholds = r, r, r, r, r, r
}

func (w *wiring) stratum(ctx context.Context) ([]component, error)  { return nil, nil }
func (w *wiring) unlocker(ctx context.Context) ([]component, error) { return nil, nil }
func (w *wiring) payouts(ctx context.Context) ([]component, error)  { return nil, nil }
