package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/economics"
)

// Fields of the share statistics that package economics reads (written by
// statsOps, see docs/redis.md): in each minute and 10-minute bucket,
// "w:<worker>" is Σd (the hashrate field the API reads too) and
// "e:<worker>" is "Σd²|n|max d"; in the worker's hash, "diff" is the
// difficulty of its latest accepted share and "agent" the user agent of
// its mining.subscribe (when the stratum side writes it).
const (
	econField       = "e:"
	workerDiffField = "diff"
	workerAgentFld  = "agent"
)

var _ economics.Stats = EconomicsStats{}

// EconomicsStats reads the share statistics for package economics
// (Store.EconomicsStats).
type EconomicsStats struct{ s *Store }

// EconomicsStats returns the store as economics.Stats.
func (s *Store) EconomicsStats() EconomicsStats { return EconomicsStats{s} }

// WorkerStats implements economics.Stats: every worker with an accepted
// share in the last 24 hours, with its sums over 5 min and 1 h (from the
// minute buckets) and 24 h (from the 10-minute slots). One pipeline reads
// the buckets, a second the workers' hashes.
//
// Connected time: until the stratum side writes a session's connected
// seconds, a worker counts as connected from the start of its first bucket
// with a share in the window to the window's end, so a worker that joined
// 5 minutes ago is measured over those 5 minutes, not the hour. A worker
// that left, or was away for a while, counts as connected after its last
// share: its rate is then underestimated, never overestimated (and a window
// without any of its shares says not_connected).
func (e EconomicsStats) WorkerStats(ctx context.Context, now time.Time) ([]economics.WorkerStats, error) {
	s := e.s
	minute := now.Unix() / 60
	slot := now.Unix() / slotSeconds
	const minutes, slots = 62, daySlots + 2
	var cmds []*redis.MapStringStringCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := int64(0); i < minutes; i++ {
			cmds = append(cmds, p.HGetAll(ctx, s.hashrateKey(minute-i)))
		}
		for i := int64(0); i < slots; i++ {
			cmds = append(cmds, p.HGetAll(ctx, s.hashrateSlotKey(slot-i)))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("redisstore: read share statistics: %w", err)
	}
	type acc struct {
		minutes, slots []economics.Bucket
	}
	workers := map[string]*acc{}
	var order []string
	for i, c := range cmds {
		isSlot := i >= minutes
		start := (minute - int64(i)) // unix minute of the bucket
		width := int64(1)
		if isSlot {
			start, width = (slot-int64(i-minutes))*slotSeconds/60, slotSeconds/60
		}
		perWorker := map[string]*economics.Bucket{}
		for field, v := range c.Val() {
			var name string
			var packed bool
			switch {
			case strings.HasPrefix(field, "w:"):
				name = field[2:]
			case strings.HasPrefix(field, econField):
				name, packed = field[len(econField):], true
			default:
				continue
			}
			b := perWorker[name]
			if b == nil {
				b = &economics.Bucket{Minute: start, Minutes: width}
				perWorker[name] = b
			}
			if packed {
				parseEconField(v, b)
			} else if d, err := strconv.ParseFloat(v, 64); err == nil {
				b.SumD = d
			}
		}
		for name, b := range perWorker {
			if b.SumD <= 0 {
				continue
			}
			a := workers[name]
			if a == nil {
				a = &acc{}
				workers[name] = a
				order = append(order, name)
			}
			if b.N == 0 { // written before Σd², n and max d were kept: one share of the mean difficulty
				b.N, b.SumD2, b.MaxD = 1, b.SumD*b.SumD, b.SumD
			}
			if isSlot {
				a.slots = append(a.slots, *b)
			} else {
				a.minutes = append(a.minutes, *b)
			}
		}
	}
	hashes := make([]*redis.SliceCmd, len(order))
	if len(order) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, name := range order {
				hashes[i] = p.HMGet(ctx, s.workerKey(name), workerDiffField, workerAgentFld)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("redisstore: read workers: %w", err)
		}
	}
	out := make([]economics.WorkerStats, 0, len(order))
	for i, name := range order {
		a := workers[name]
		ws := economics.WorkerStats{Worker: name, Address: name}
		if addr, _, ok := strings.Cut(name, "."); ok {
			ws.Address = addr
		}
		if vals := hashes[i].Val(); len(vals) == 2 {
			if v, ok := vals[0].(string); ok {
				ws.Difficulty, _ = strconv.ParseFloat(v, 64)
			}
			if v, ok := vals[1].(string); ok {
				ws.UserAgent = v
			}
		}
		ws.Windows[0] = windowSums(a.minutes, now, economics.Window5m)
		ws.Windows[1] = windowSums(a.minutes, now, economics.Window1h)
		ws.Windows[2] = windowSums(a.slots, now, economics.Window24h)
		out = append(out, ws)
	}
	return out, nil
}

// windowSums sums the buckets of one window and sets the connected time
// from the start of the first bucket with a share to the end of the
// window's last complete bucket (see WorkerStats).
func windowSums(buckets []economics.Bucket, now time.Time, window time.Duration) economics.WindowSums {
	end := now.Unix()/60 - 1 // last complete minute, as SumBuckets
	first, width := int64(-1), int64(1)
	for i := range buckets {
		b := &buckets[i]
		w := max(b.Minutes, 1)
		if b.Minute <= end-int64(window/time.Minute) || b.Minute+w-1 > end {
			continue
		}
		if first < 0 || b.Minute < first {
			first = b.Minute
		}
		width = w
	}
	s := economics.SumBuckets(buckets, now, window)
	if first >= 0 {
		last := (end+1)/width*width - 1 // end of the last complete bucket
		s.Connected = time.Duration(last-first+1) * time.Minute
	}
	return s
}

// parseEconField reads "Σd²|n|max d" into b.
func parseEconField(v string, b *economics.Bucket) {
	parts := strings.Split(v, "|")
	if len(parts) != 3 {
		return
	}
	b.SumD2, _ = strconv.ParseFloat(parts[0], 64)
	b.N, _ = strconv.ParseInt(parts[1], 10, 64)
	b.MaxD, _ = strconv.ParseFloat(parts[2], 64)
}
