package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/bench/miner"
)

// TestRejectedSharesReachStatistics: rejected and stale shares of an
// authorized worker reach its statistics in Redis and the API shows them
// (issue 10 item 3: the rejection had no address, so they were never
// recorded, and an address sending only bad shares was a 404).
func TestRejectedSharesReachStatistics(t *testing.T) {
	e := startDaemon(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	user := minerB + ".bad"
	m, err := miner.Dial(ctx, miner.Config{Address: e.stratum, Username: user, Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var job *miner.Job
	e.waitFor(t, "a job", 30*time.Second, func() bool { job = m.CurrentJob(); return job != nil })
	// Stale: a job id the pool does not know (21).
	r, err := m.Call(ctx, "mining.submit", []string{user, "nojob", "0000000000000000", fmt.Sprintf("%08x", job.NTime), "00000000"})
	if err != nil || r.Code() != 21 {
		t.Fatalf("unknown job: %v %s", err, r.Error)
	}
	// Rejected: an extranonce2 of the wrong size (20).
	r, err = m.Call(ctx, "mining.submit", []string{user, job.ID, "00", fmt.Sprintf("%08x", job.NTime), "00000000"})
	if err != nil || r.Code() != 20 {
		t.Fatalf("bad extranonce2: %v %s", err, r.Error)
	}
	var mr api.Miner
	e.waitFor(t, "the rejects in the miner's statistics", time.Minute, func() bool {
		code := e.get(t, "/api/v1/miners/"+minerB, &mr)
		if code != 200 {
			return false
		}
		for _, w := range mr.Workers {
			if w.Name == "bad" && w.Rejected == 1 && w.Stale == 1 && w.Accepted == 0 {
				return true
			}
		}
		return false
	})
	var pool api.PoolResponse
	e.waitFor(t, "the rejects in the pool's statistics", 30*time.Second, func() bool {
		return e.get(t, "/api/v1/pool", &pool) == 200 && pool.SharesRejected >= 1 && pool.SharesStale >= 1
	})
}
