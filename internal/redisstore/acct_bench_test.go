package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// BenchmarkAccountingCall measures the accounting script's time inside
// Redis (INFO commandstats, EVALSHA usec per call: wall clock, inflated by
// preemption on a loaded machine) for what a paced pool writes: group
// commits of 1, 2 and 5 shares, of distinct workers of one address
// ("one-address") or of distinct addresses ("addresses"), from a pool of
// 1,000 addresses; "two-frontends" is "addresses" from two Stores (two
// frontends of one pool) taking turns, so that expectations mostly fail. Two windows: "limit" is a known limit as the daemon
// passes it (ledger's trimLimit, 1.25 N) into a window that is full, so it
// trims as in steady state, with a slice sealing at L/80 = 10,000 shares
// of difficulty 1024 (a real pool's slices hold far more, so this seals and
// trims more often than production); "unknown" is the limit "0" of a
// regtest pool (network difficulty below 10^-8: lode-bench serve), which
// seals a slice after every batch. Each iteration writes the same batch
// twice, on two servers: through ApplyBatch (redis-µs/call, and met: the
// share of calls whose expectations the script found met) and through the
// script as it was before expectations (acctScriptBefore:
// before-redis-µs/call), alternating in chunks of 500 so that both see the
// same load; redis-cpu-µs/call and before-redis-cpu-µs/call are each
// redis-server's CPU time (INFO cpu, user + system: the round trips
// included) per call.
func BenchmarkAccountingCall(b *testing.B) {
	const (
		addresses = 1000
		units     = "102400000000"      // difficulty 1024
		limit     = "81920000000000000" // 800,000 shares of difficulty 1024
	)
	for _, window := range []string{"limit", "unknown"} {
		for _, kind := range []string{"one-address", "addresses", "two-frontends"} {
			for _, size := range []int{1, 2, 5} {
				name := fmt.Sprintf("window=%s/%s/shares=%d", window, kind, size)
				b.Run(name, func(b *testing.B) {
					s, rdb := windowBenchStore(b, "ac")
					s2 := New(rdb, Config{Prefix: "ac"}) // the other frontend
					_, rdbRef := windowBenchStore(b, "ac")
					ref := New(rdbRef, Config{Prefix: "ac"}) // never learns: no expectations
					ctx := context.Background()
					lim := limit
					if window == "unknown" {
						lim = "0"
					}
					seq := uint64(time.Now().UnixNano())
					w := 0
					mk := func(n int, oneAddress bool) *ledger.Batch {
						bt := &ledger.Batch{Instance: "ac", Kind: ledger.BatchAccounting}
						addr := ""
						for j := range n {
							seq++
							if j == 0 || !oneAddress {
								addr = "bc1qpacedpoolworkeraddress" + strconv.Itoa(100_000+w%addresses)
								w++
							}
							bt.Shares = append(bt.Shares, ledger.Entry{Seq: seq, Units: units,
								Share: shares.Share{Worker: addr + ".w" + strconv.Itoa(j), Address: addr,
									Difficulty: 1024, HashDifficulty: 2048, Time: time.Now()}})
						}
						seq++
						bt.Seq = seq
						return bt
					}
					before := func(bt *ledger.Batch) {
						a := getScriptArgs()
						defer a.release()
						if err := ref.acctOps(a, bt, lim); err != nil {
							b.Fatal(err)
						}
						_, keys, argv := a.command(acctScriptBefore.Hash())
						if err := acctScriptBefore.EvalSha(ctx, rdbRef, keys, slices.Concat(argv[:6], argv[7:])...).Err(); err != nil {
							b.Fatal(err)
						}
					}
					turn := 0
					now := func(bt *ledger.Batch) {
						st := s
						if kind == "two-frontends" && turn%2 == 1 {
							st = s2
						}
						turn++
						if err := st.ApplyBatch(ctx, bt, lim); err != nil {
							b.Fatal(err)
						}
					}
					if err := acctScriptBefore.Load(ctx, rdbRef).Err(); err != nil {
						b.Fatal(err)
					}
					// Fill the window past its limit (every address in the
					// open slice), then a warm-up of the measured kind.
					fill := 850_000 / 256
					if window == "unknown" {
						fill = 4
					}
					batches := make([]*ledger.Batch, 0, 500)
					for i := range fill + 1000 {
						bt := mk(256, false)
						if i >= fill {
							bt = mk(size, kind == "one-address")
						}
						now(bt)
						before(bt)
					}
					hits := s.acct.hits + s2.acct.hits
					rdb.ConfigResetStat(ctx)
					rdbRef.ConfigResetStat(ctx)
					cpu0, refCPU0 := redisCPU(b, rdb), redisCPU(b, rdbRef)
					b.ReportAllocs()
					b.ResetTimer()
					for done := 0; done < b.N; {
						batches = batches[:0]
						for range min(500, b.N-done) {
							batches = append(batches, mk(size, kind == "one-address"))
						}
						for _, bt := range batches {
							now(bt)
						}
						for _, bt := range batches {
							before(bt)
						}
						done += len(batches)
					}
					b.StopTimer()
					cpu, refCPU := redisCPU(b, rdb)-cpu0, redisCPU(b, rdbRef)-refCPU0
					usec, calls := evalshaUsec(ctx, b, rdb)
					refUsec, refCalls := evalshaUsec(ctx, b, rdbRef)
					b.ReportMetric(usec/calls, "redis-µs/call")
					b.ReportMetric(refUsec/refCalls, "before-redis-µs/call")
					b.ReportMetric(cpu*1e6/calls, "redis-cpu-µs/call")
					b.ReportMetric(refCPU*1e6/refCalls, "before-redis-cpu-µs/call")
					b.ReportMetric(float64(s.acct.hits+s2.acct.hits-hits)/float64(b.N), "met")
				})
			}
		}
	}
}
