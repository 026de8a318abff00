package redisstore_test

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

func shareStore(t *testing.T) (*redisstore.Store, *redis.Client) {
	t.Helper()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return redisstore.New(rdb, redisstore.Config{Prefix: "t"}), rdb
}

// share builds an entry of units u (a decimal string) for address.
// blockEntry is entry for a share that found a block.
func blockEntry(seq uint64, address, units string) ledger.Entry {
	e := entry(seq, address, units)
	e.Share.Block = true
	return e
}

func entry(seq uint64, address, units string) ledger.Entry {
	return ledger.Entry{Seq: seq, Units: units, Share: shares.Share{
		Worker: address + ".rig", Address: address, WorkerName: "rig",
		Difficulty: 1, HashDifficulty: 2, Time: time.Now(),
	}}
}

// windowModel is the window semantics in plain Go: slices holding one entry
// per address (first appearance order, named by the first share), the open
// slice sealed after a batch ending with a block share, once 80 × its units
// reach the limit L, or after every batch while no limit is known; then the
// oldest sealed slices dropped while the rest still reaches L.
type windowModel struct {
	open   *modelSlice
	sealed []*modelSlice // oldest first
	total  *big.Int
	limit  *big.Int
}

type modelSlice struct {
	entries []ledger.WindowEntry
	index   map[string]int
	total   *big.Int
}

func (m *windowModel) apply(inst string, b []ledger.Entry, limit string) {
	if m.total == nil {
		m.total = new(big.Int)
	}
	if limit != "0" {
		m.limit, _ = new(big.Int).SetString(limit, 10)
	}
	if m.open == nil {
		m.open = &modelSlice{index: map[string]int{}, total: new(big.Int)}
	}
	o := m.open
	block := false
	for _, e := range b {
		u, _ := new(big.Int).SetString(e.Units, 10)
		i, ok := o.index[e.Share.Address]
		if !ok {
			i = len(o.entries)
			o.index[e.Share.Address] = i
			o.entries = append(o.entries, ledger.WindowEntry{Seq: inst + ":" + strconv.FormatUint(e.Seq, 10), Address: e.Share.Address, Units: "0"})
		}
		v, _ := new(big.Int).SetString(o.entries[i].Units, 10)
		o.entries[i].Units = v.Add(v, u).String()
		o.total.Add(o.total, u)
		m.total.Add(m.total, u)
		block = e.Share.Block
	}
	limited := m.limit != nil && m.limit.Sign() > 0
	if !limited || block || new(big.Int).Mul(o.total, big.NewInt(80)).Cmp(m.limit) >= 0 {
		m.sealed = append(m.sealed, o)
		m.open = nil
	}
	if !limited {
		return
	}
	for len(m.sealed) > 0 {
		rest := new(big.Int).Sub(m.total, m.sealed[0].total)
		if rest.Cmp(m.limit) < 0 {
			break
		}
		m.total = rest
		m.sealed = m.sealed[1:]
	}
}

// entries is the window newest first, as Store.Window reads it.
func (m *windowModel) entries() []ledger.WindowEntry {
	var out []ledger.WindowEntry
	slices := m.sealed
	if m.open != nil {
		slices = append(append([]*modelSlice(nil), m.sealed...), m.open)
	}
	for i := len(slices) - 1; i >= 0; i-- {
		for j := len(slices[i].entries) - 1; j >= 0; j-- {
			out = append(out, slices[i].entries[j])
		}
	}
	return out
}

func checkWindow(t *testing.T, s *redisstore.Store, m *windowModel) {
	t.Helper()
	w, err := s.Window(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if w.Total != m.total.String() {
		t.Fatalf("window total %s, want %s", w.Total, m.total)
	}
	want := m.entries()
	if len(w.Entries) != len(want) {
		t.Fatalf("window has %d entries, want %d", len(w.Entries), len(want))
	}
	for i := range w.Entries {
		if w.Entries[i] != want[i] {
			t.Fatalf("entry %d = %+v, want %+v", i, w.Entries[i], want[i])
		}
	}
}

func TestWindowTrim(t *testing.T) {
	s, rdb := shareStore(t)
	ctx := context.Background()
	type step struct {
		shares []ledger.Entry
		limit  string
		// want: the window's units, newest first
		want []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"no limit keeps everything", []step{
			{[]ledger.Entry{entry(1, "A", "3"), entry(2, "B", "4")}, "0", []string{"4", "3"}},
			{[]ledger.Entry{entry(4, "A", "5")}, "0", []string{"5", "4", "3"}},
		}},
		{"window exactly N is not trimmed", []step{
			{[]ledger.Entry{entry(1, "A", "3"), entry(2, "B", "3"), entry(3, "C", "4")}, "10", []string{"4", "3", "3"}},
		}},
		// Whole slices are dropped: the first batch is one slice (it
		// reached L/80), kept until the rest reaches L without it.
		{"oldest slice dropped only while the rest reaches N", []step{
			{[]ledger.Entry{entry(1, "A", "3"), entry(2, "B", "3"), entry(3, "C", "3"), entry(4, "D", "3")}, "10", []string{"3", "3", "3", "3"}},
			{[]ledger.Entry{entry(6, "E", "3")}, "10", []string{"3", "3", "3", "3", "3"}},
			{[]ledger.Entry{entry(8, "F", "8")}, "10", []string{"8", "3"}},
		}},
		{"a slice stays open below L/80 and merges an address's batches", []step{
			{[]ledger.Entry{entry(1, "A", "1"), entry(2, "B", "2")}, "1000", []string{"2", "1"}},
			{[]ledger.Entry{entry(4, "A", "4"), entry(5, "C", "1")}, "1000", []string{"1", "2", "5"}},
			{[]ledger.Entry{entry(7, "B", "5")}, "1000", []string{"1", "7", "5"}},
		}},
		{"one address coalesced per batch", []step{
			{[]ledger.Entry{entry(1, "A", "1"), entry(2, "B", "2"), entry(3, "A", "4")}, "0", []string{"2", "5"}},
		}},
		{"stored limit used when 0 is passed", []step{
			{[]ledger.Entry{entry(1, "A", "6")}, "5", []string{"6"}},
			{[]ledger.Entry{entry(3, "B", "6")}, "0", []string{"6"}},
		}},
		{"shrinking N drops many at once", []step{
			{[]ledger.Entry{entry(1, "A", "1"), entry(2, "B", "1"), entry(3, "C", "1"), entry(4, "D", "1")}, "100", []string{"1", "1", "1", "1"}},
			{[]ledger.Entry{entry(6, "E", "1")}, "2", []string{"1", "1", "1", "1", "1"}},
			{[]ledger.Entry{entry(8, "F", "1")}, "2", []string{"1", "1"}},
		}},
		{"mainnet-sized units beyond 2^64", []step{
			{[]ledger.Entry{entry(1, "A", "123456789012345678901234"), entry(2, "B", "999999999999")}, "0", []string{"999999999999", "123456789012345678901234"}},
			{[]ledger.Entry{entry(4, "C", "1")}, "1000000000000", []string{"1", "999999999999", "123456789012345678901234"}},
			{[]ledger.Entry{entry(6, "D", "1000000000000")}, "1000000000000", []string{"1000000000000", "1"}},
		}},
		{"a block share seals the slice", []step{
			{[]ledger.Entry{entry(1, "A", "1"), blockEntry(2, "B", "1")}, "1000", []string{"1", "1"}},
			{[]ledger.Entry{entry(4, "A", "1")}, "1000", []string{"1", "1", "1"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			m := &windowModel{}
			seq := uint64(100)
			for i, st := range tc.steps {
				seq += 10
				b := &ledger.Batch{Instance: "x", Seq: seq, Shares: st.shares}
				if err := s.ApplyBatch(ctx, b, st.limit); err != nil {
					t.Fatal(err)
				}
				m.apply("x", st.shares, st.limit)
				checkWindow(t, s, m)
				w, _ := s.Window(ctx)
				var got []string
				for _, e := range w.Entries {
					got = append(got, e.Units)
				}
				if fmt.Sprint(got) != fmt.Sprint(st.want) {
					t.Fatalf("step %d: window %v, want %v", i, got, st.want)
				}
			}
		})
	}
}

// TestWindowMatchesModel drives random batches with unit sizes from 1 to
// 10^23 (mainnet rounds exceed 2^64 units) through the script and the Go
// model, checking the window, the round totals and the exact sums.
func TestWindowMatchesModel(t *testing.T) {
	s, _ := shareStore(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 9))
	m := &windowModel{}
	roundTotal := new(big.Int)
	seq := uint64(1)
	for batch := 0; batch < 60; batch++ {
		n := 1 + r.IntN(300)
		es := make([]ledger.Entry, n)
		for i := range es {
			digits := 1 + r.IntN(23)
			u := strconv.Itoa(1 + r.IntN(9))
			for range digits - 1 {
				u += strconv.Itoa(r.IntN(10))
			}
			addr := fmt.Sprintf("addr%d", r.IntN(20))
			seq++
			es[i] = entry(seq, addr, u)
			v, _ := new(big.Int).SetString(u, 10)
			roundTotal.Add(roundTotal, v)
		}
		limit := "0"
		if batch > 10 {
			limit = strconv.Itoa(1+r.IntN(9)) + "0000000000000000000000000"[:r.IntN(25)]
		}
		seq++
		if err := s.ApplyBatch(ctx, &ledger.Batch{Instance: "m", Seq: seq, Shares: es}, limit); err != nil {
			t.Fatal(err)
		}
		m.apply("m", es, limit)
		checkWindow(t, s, m)
	}
	total, err := s.RoundTotal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if total != roundTotal.String() {
		t.Fatalf("round total %s, want %s", total, roundTotal)
	}
}

func TestApplyBatchIdempotent(t *testing.T) {
	s, _ := shareStore(t)
	ctx := context.Background()
	b := &ledger.Batch{Instance: "i1", Seq: 50, Shares: []ledger.Entry{entry(48, "A", "100"), entry(49, "B", "200")},
		Rejects: []ledger.Reject{{Worker: "A.rig", Address: "A", Reason: "stale", Count: 2, Time: time.Now()}}}
	for range 3 {
		if err := s.ApplyBatch(ctx, b, "0"); err != nil {
			t.Fatal(err)
		}
	}
	// An older batch of the same instance arriving late is skipped too; a
	// different instance with the same numbers is not.
	old := &ledger.Batch{Instance: "i1", Seq: 40, Shares: []ledger.Entry{entry(39, "A", "7")}}
	other := &ledger.Batch{Instance: "i2", Seq: 50, Shares: []ledger.Entry{entry(49, "A", "1")}}
	for _, x := range []*ledger.Batch{old, other} {
		if err := s.ApplyBatch(ctx, x, "0"); err != nil {
			t.Fatal(err)
		}
	}
	total, err := s.RoundTotal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Window(ctx)
	if err != nil {
		t.Fatal(err)
	}
	round, _, err := w.ByAddress()
	if err != nil {
		t.Fatal(err)
	}
	if total != "301" || round["A"].String() != "101" || round["B"].String() != "200" {
		t.Fatalf("window %v round total %s, want A=101 B=200 total 301", round, total)
	}
	ws, err := s.WorkerStats(ctx, "A.rig", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ws.Accepted != 2 || ws.Stale != 2 {
		t.Fatalf("worker stats %+v, want 2 accepted, 2 stale", ws)
	}
	hw, err := s.HighWater(ctx, "i1")
	if err != nil || hw != 50 {
		t.Fatalf("high water %d, %v; want 50", hw, err)
	}
	if hw, err := s.HighWater(ctx, "nobody"); err != nil || hw != 0 {
		t.Fatalf("high water of unknown instance %d, %v; want 0", hw, err)
	}
}

func TestRoundRestartsAfterSnapshot(t *testing.T) {
	s, rdb := shareStore(t)
	ctx := context.Background()
	if err := s.ApplyBatch(ctx, &ledger.Batch{Instance: "i", Seq: 2, Shares: []ledger.Entry{entry(1, "A", "5")}}, "0"); err != nil {
		t.Fatal(err)
	}
	// A block-found snapshot renames the round total away.
	if err := rdb.Rename(ctx, "t:{acct}:round:total", "t:{acct}:block:x:round:total").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyBatch(ctx, &ledger.Batch{Instance: "i", Seq: 4, Shares: []ledger.Entry{entry(3, "B", "7")}}, "0"); err != nil {
		t.Fatal(err)
	}
	total, err := s.RoundTotal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if total != "7" {
		t.Fatalf("new round total %s, want 7", total)
	}
}

func TestShareStatistics(t *testing.T) {
	s, rdb := shareStore(t)
	ctx := context.Background()
	now := time.Now()
	mk := func(seq uint64, worker, name string, diff, hashDiff float64, at time.Time) ledger.Entry {
		u, err := ledger.DiffUnits(diff)
		if err != nil {
			t.Fatal(err)
		}
		return ledger.Entry{Seq: seq, Units: u, Share: shares.Share{Worker: worker, Address: "bc1qminer", WorkerName: name,
			Difficulty: diff, HashDifficulty: hashDiff, Time: at}}
	}
	b := &ledger.Batch{Instance: "s", Seq: 10, Shares: []ledger.Entry{
		mk(1, "bc1qminer.a", "a", 1000, 1500, now),
		mk(2, "bc1qminer.a", "a", 1000, 90000, now.Add(-5*time.Minute)),
		mk(3, "bc1qminer.a", "a", 500, 600, now.Add(-30*time.Minute)),
		mk(4, "bc1qminer.a", "a", 250, 300, now.Add(-3*time.Hour)),
		mk(5, "bc1qminer.a", "a", 9999, 1e7, now.Add(-25*time.Hour)), // outside every window
		mk(6, "bc1qminer.b", "b", 2000, 2500, now),
	}, Rejects: []ledger.Reject{
		{Worker: "bc1qminer.a", Address: "bc1qminer", Reason: ledger.ReasonStale, Count: 3, Time: now},
		{Worker: "bc1qminer.a", Address: "bc1qminer", Reason: "low-difficulty", Count: 2, Time: now},
		{Worker: "bc1qminer.b", Address: "bc1qminer", Reason: "duplicate", Count: 1, Time: now},
	}}
	if err := s.ApplyBatch(ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	const two32 = 4294967296.0
	ws, err := s.WorkerStats(ctx, "bc1qminer.a", now)
	if err != nil {
		t.Fatal(err)
	}
	want := ledger.WorkerStats{
		Accepted: 5, Rejected: 2, Stale: 3,
		LastShare:      time.UnixMilli(now.UnixMilli()),
		BestDifficulty: 1e7,
		Hashrate10m:    2000 * two32 / 600,
		Hashrate1h:     2500 * two32 / 3600,
		// 24 h: over the time since its first share in the window (the
		// 10-minute slot of the share 3 h ago), not 24 h (issue 15).
		Hashrate24h: 2750 * two32 / (float64(now.UnixNano())/1e9 - float64(now.Add(-3*time.Hour).Unix()/600*600)),
	}
	if !ws.LastShare.Equal(want.LastShare) {
		t.Fatalf("last share %v, want %v", ws.LastShare, want.LastShare)
	}
	ws.LastShare = want.LastShare
	for _, f := range []struct {
		name      string
		got, want float64
	}{{"10m", ws.Hashrate10m, want.Hashrate10m}, {"1h", ws.Hashrate1h, want.Hashrate1h}, {"24h", ws.Hashrate24h, want.Hashrate24h}} {
		if math.Abs(f.got-f.want) > 1e-9*f.want {
			t.Fatalf("hashrate %s = %v, want %v", f.name, f.got, f.want)
		}
	}
	ws.Hashrate10m, ws.Hashrate1h, ws.Hashrate24h = want.Hashrate10m, want.Hashrate1h, want.Hashrate24h
	if ws != want {
		t.Fatalf("worker stats %+v, want %+v", ws, want)
	}
	ms, err := s.MinerStats(ctx, "bc1qminer", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms.Workers) != 2 || !ms.Workers["b"].Equal(time.UnixMilli(now.UnixMilli())) {
		t.Fatalf("miner workers %v", ms.Workers)
	}
	if math.Abs(ms.Hashrate10m-4000*two32/600) > 1e-6 {
		t.Fatalf("miner hashrate 10m %v", ms.Hashrate10m)
	}
	if len(ms.Recent) != 6 || ms.Recent[0].WorkerName != "b" || ms.Recent[0].Difficulty != 2000 {
		t.Fatalf("recent shares %+v", ms.Recent)
	}
	ps, err := s.PoolStats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Accepted != 6 || ps.Stale != 3 || ps.Rejected != 3 {
		t.Fatalf("pool stats %+v", ps)
	}
	// Statistics expire; the window and round totals do not.
	ttl, err := rdb.TTL(ctx, "t:"+redisstore.StatsShardTag("bc1qminer.a")+":worker:bc1qminer.a").Result()
	if err != nil || ttl <= 0 {
		t.Fatalf("worker stats TTL %v, %v; want an expiry", ttl, err)
	}
	minuteTTL, _ := rdb.TTL(ctx, fmt.Sprintf("t:%s:hr:%d", redisstore.StatsShardTag("bc1qminer.a"), now.Unix()/60)).Result()
	slotTTL, _ := rdb.TTL(ctx, fmt.Sprintf("t:%s:hr10:%d", redisstore.StatsShardTag("bc1qminer.a"), now.Unix()/600)).Result()
	if minuteTTL <= 0 || minuteTTL > 2*time.Hour || slotTTL <= 2*time.Hour || slotTTL > 25*time.Hour {
		t.Fatalf("hashrate bucket TTLs: minute %v, 10-minute slot %v; want ≤ 2h and ≤ 25h", minuteTTL, slotTTL)
	}
	if ttl, _ := rdb.TTL(ctx, "t:{acct}:pplns:total").Result(); ttl != -1 {
		t.Fatalf("window TTL %v, want none", ttl)
	}
	if v, _ := rdb.HGet(ctx, "t:"+redisstore.StatsShardTag("bc1qminer.a")+":worker:bc1qminer.a", "reject:low-difficulty").Result(); v != "2" {
		t.Fatalf("per-reason reject count %q, want 2", v)
	}
}

// TestStatisticsOfSeveralWriters: the bucket fields a Store writes from what
// it wrote last (statsScript's expected values) add up exactly whatever else
// wrote them meanwhile: another frontend's Store, a connected-time report,
// a value changed behind its back, a replayed batch; and a worker's counters
// and best difficulty too.
func TestStatisticsOfSeveralWriters(t *testing.T) {
	s1, rdb := shareStore(t)
	s2 := redisstore.New(rdb, redisstore.Config{Prefix: "t"})
	ctx := context.Background()
	now := time.Now()
	const worker, address = "bc1qmany.rig", "bc1qmany"
	var seq uint64 = 100
	var sumD, sumD2, maxD float64
	var n int64
	best := 0.0
	apply := func(t *testing.T, s *redisstore.Store, instance string, diffs ...float64) {
		t.Helper()
		b := &ledger.Batch{Instance: instance, Kind: ledger.BatchStats}
		for i, d := range diffs {
			seq++
			b.Shares = append(b.Shares, ledger.Entry{Seq: seq, Units: "1", Share: shares.Share{Worker: worker, Address: address,
				WorkerName: "rig", Difficulty: d, HashDifficulty: d * float64(i+2), Time: now}})
			sumD, sumD2, maxD, n = sumD+d, sumD2+d*d, max(maxD, d), n+1
			best = max(best, d*float64(i+2))
		}
		seq++
		b.Seq = seq
		for range 2 { // the second is a replay: skipped
			if err := s.ApplyBatch(ctx, b, "0"); err != nil {
				t.Fatal(err)
			}
		}
	}
	minuteKey := fmt.Sprintf("t:%s:hr:%d", redisstore.StatsShardTag(worker), now.Unix()/60)
	addrKey := fmt.Sprintf("t:%s:hr:%d", redisstore.StatsShardTag(address), now.Unix()/60)
	steps := []struct {
		name string
		do   func(t *testing.T)
	}{
		{"first shares", func(t *testing.T) { apply(t, s1, "f1", 0.1, 3) }},
		{"same writer again", func(t *testing.T) { apply(t, s1, "f1", 0.7) }},
		{"connected time reported", func(t *testing.T) {
			err := s1.RecordPresence(ctx, []redisstore.WorkerPresence{{Worker: worker, Address: address,
				Spans: [][2]time.Time{{now.Truncate(time.Minute), now.Truncate(time.Minute).Add(7 * time.Second)}}}})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"same writer after the report", func(t *testing.T) { apply(t, s1, "f1", 1.3) }},
		{"another frontend", func(t *testing.T) { apply(t, s2, "f2", 2.5, 0.2) }},
		{"first writer, stale expectation", func(t *testing.T) { apply(t, s1, "f1", 4) }},
		{"first writer again", func(t *testing.T) { apply(t, s1, "f1", 0.3) }},
		{"value changed behind its back", func(t *testing.T) {
			// Another writer's share of difficulty 1 that this test
			// applies by hand, as a merged field would look.
			v, err := rdb.HGet(ctx, minuteKey, "w:"+worker).Result()
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.SplitN(v, "|", 5)
			d, _ := strconv.ParseFloat(parts[0], 64)
			q, _ := strconv.ParseFloat(parts[1], 64)
			c, _ := strconv.ParseInt(parts[2], 10, 64)
			m, _ := strconv.ParseFloat(parts[3], 64)
			sumD, sumD2, n, maxD = d+1, q+1, c+1, max(m, 1)
			parts[0], parts[1], parts[2], parts[3] = fmt.Sprint(sumD), fmt.Sprint(sumD2), fmt.Sprint(n), fmt.Sprint(maxD)
			if err := rdb.HSet(ctx, minuteKey, "w:"+worker, strings.Join(parts, "|")).Err(); err != nil {
				t.Fatal(err)
			}
			a, _ := rdb.HGet(ctx, addrKey, "m:"+address).Float64()
			if err := rdb.HSet(ctx, addrKey, "m:"+address, a+1).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"after the change", func(t *testing.T) { apply(t, s1, "f1", 0.9) }},
	}
	for _, st := range steps {
		st.do(t)
		v, err := rdb.HGet(ctx, minuteKey, "w:"+worker).Result()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		parts := strings.Split(v, "|")
		if len(parts) < 4 {
			t.Fatalf("%s: field %q", st.name, v)
		}
		d, _ := strconv.ParseFloat(parts[0], 64)
		q, _ := strconv.ParseFloat(parts[1], 64)
		c, _ := strconv.ParseInt(parts[2], 10, 64)
		m, _ := strconv.ParseFloat(parts[3], 64)
		if math.Abs(d-sumD) > 1e-9*sumD || math.Abs(q-sumD2) > 1e-9*sumD2 || c != n || m != maxD {
			t.Fatalf("%s: field %q, want Σd %v Σd² %v n %d max %v", st.name, v, sumD, sumD2, n, maxD)
		}
		if st.name != "first shares" && st.name != "same writer again" && (len(parts) != 5 || parts[4] != "7") {
			t.Fatalf("%s: field %q lost the 7 connected seconds", st.name, v)
		}
		a, _ := rdb.HGet(ctx, addrKey, "m:"+address).Float64()
		if math.Abs(a-sumD) > 1e-9*sumD {
			t.Fatalf("%s: address field %v, want %v", st.name, a, sumD)
		}
	}
	ws, err := s1.WorkerStats(ctx, worker, now)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Accepted != 9 || ws.BestDifficulty != best {
		t.Fatalf("worker stats %+v, want 9 accepted, best %v", ws, best)
	}
}
