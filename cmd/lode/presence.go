package main

import (
	"context"
	"time"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/stratum"
)

// storePresence is the stratum server's PresenceRecorder: the workers'
// connected time and user agents go into the share statistics, where
// package economics reads them (docs/economics.md).
type storePresence struct{ store *redisstore.Store }

var _ stratum.PresenceRecorder = storePresence{}

func (p storePresence) RecordPresence(ctx context.Context, ps []stratum.Presence) error {
	out := make([]redisstore.WorkerPresence, len(ps))
	for i := range ps {
		x := &ps[i]
		spans := make([][2]time.Time, len(x.Spans))
		for j, sp := range x.Spans {
			spans[j] = [2]time.Time{sp.From, sp.To}
		}
		out[i] = redisstore.WorkerPresence{Worker: x.Worker, Address: x.Address, UserAgent: x.UserAgent,
			Difficulty: x.Difficulty, Spans: spans}
	}
	return p.store.RecordPresence(ctx, out)
}
