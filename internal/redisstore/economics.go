package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/economics"
)

// Fields of the share statistics that package economics reads (see
// docs/redis.md): in each minute and 10-minute bucket, "w:<worker>" is
// "Σd|Σd²|n|max d[|connected s]" (statsOps adds the shares, RecordPresence
// the connected seconds; the API's hashrates read its Σd); in the worker's
// hash, "diff" is the difficulty of its latest accepted share (statsOps)
// and "agent" the user agent of its mining.subscribe (RecordPresence).
// Buckets written before the packing hold Σd alone in "w:" and
// "Σd²|n|max d" in "e:<worker>".
const (
	econField       = "e:"
	workerDiffField = "diff"
	workerAgentFld  = "agent"
)

var _ economics.Stats = (*EconomicsStats)(nil)

// EconomicsStats reads the share statistics for package economics
// (Store.EconomicsStats). It keeps the buckets it has read, per worker: a
// minute or slot more than two buckets old is settled (the ledger writes
// the current one; a batch or a spool replay may still land in the one
// before), so a refresh reads only the newest few hashes, not the 208 of
// the day, and adds them to each worker's buckets. Safe for concurrent
// use.
type EconomicsStats struct {
	s *Store

	mu      sync.Mutex
	read    map[string]bool           // bucket keys read (settled ones are not read again)
	workers map[string]*workerBuckets // the buckets read, per worker
}

// workerBuckets are one worker's minute and slot buckets of the day, in
// no particular order (SumBuckets picks them by time).
type workerBuckets struct {
	minutes, slots []economics.Bucket
}

// put adds one bucket, replacing the one with the same start when the
// bucket's hash was read before.
func (w *workerBuckets) put(b economics.Bucket, slot, reread bool) {
	list := &w.minutes
	if slot {
		list = &w.slots
	}
	for i := len(*list) - 1; reread && i >= 0; i-- {
		if (*list)[i].Minute == b.Minute {
			(*list)[i] = b
			return
		}
	}
	*list = append(*list, b)
}

// prune drops the buckets starting before the minute and slot limits and
// reports whether any is left.
func (w *workerBuckets) prune(minMinute, minSlotMinute int64) bool {
	keep := func(list []economics.Bucket, from int64) []economics.Bucket {
		out := list[:0]
		for _, b := range list {
			if b.Minute >= from {
				out = append(out, b)
			}
		}
		return out
	}
	w.minutes, w.slots = keep(w.minutes, minMinute), keep(w.slots, minSlotMinute)
	return len(w.minutes)+len(w.slots) > 0
}

// EconomicsStats returns a statistics reader for package economics.
func (s *Store) EconomicsStats() *EconomicsStats {
	return &EconomicsStats{s: s, read: map[string]bool{}, workers: map[string]*workerBuckets{}}
}

// bucketRef is one minute or slot hash of the day.
type bucketRef struct {
	key          string
	start, width int64 // unix minute, minutes
	slot         bool
	settled      bool
}

// WorkerStats implements economics.Stats: every worker with an accepted
// share in the last 24 hours, with its sums over 5 min and 1 h (from the
// minute buckets) and 24 h (from the 10-minute slots). One pipeline reads
// the buckets not cached yet, a second the workers' hashes.
//
// Connected time is what the stratum frontends recorded (RecordPresence):
// a worker that joined 5 minutes ago is measured over those 5 minutes, not
// the hour, and one that left over the time it was there. A bucket with
// shares but no connected time recorded (written before connected time
// was, by a frontend that does not record it, or the last minute before
// its report) counts as connected for its whole width. A worker with no
// connected time in the whole window counts as connected from the start
// of its first bucket with a share to the window's end (its rate
// underestimated, never overestimated, if it left meanwhile).
func (e *EconomicsStats) WorkerStats(ctx context.Context, now time.Time) ([]economics.WorkerStats, error) {
	s := e.s
	minute := now.Unix() / 60
	slot := now.Unix() / slotSeconds
	const minutes, slots = 62, daySlots + 2
	// Every statistics shard holds the buckets of its workers.
	refs := make([]bucketRef, 0, statsShards*(minutes+slots))
	for _, tag := range statsShardTags {
		for i := int64(0); i < minutes; i++ {
			refs = append(refs, bucketRef{key: s.hashrateKey(tag, minute-i), start: minute - i, width: 1, settled: i >= 3})
		}
		for i := int64(0); i < slots; i++ {
			refs = append(refs, bucketRef{key: s.hashrateSlotKey(tag, slot-i), start: (slot - i) * slotSeconds / 60,
				width: slotSeconds / 60, slot: true, settled: i >= 2})
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cmds := map[int]*redis.MapStringStringCmd{}
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			if !e.read[r.key] || !r.settled {
				cmds[i] = p.HGetAll(ctx, r.key)
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("redisstore: read share statistics: %w", err)
	}
	keep := make(map[string]bool, len(refs))
	for i, r := range refs {
		keep[r.key] = true
		c, ok := cmds[i]
		if !ok {
			continue
		}
		reread := e.read[r.key]
		e.read[r.key] = true
		for name, b := range parseBuckets(c.Val(), r.start, r.width) {
			w := e.workers[name]
			if w == nil {
				w = &workerBuckets{}
				e.workers[name] = w
			}
			w.put(*b, r.slot, reread)
		}
	}
	for k := range e.read { // older than the day
		if !keep[k] {
			delete(e.read, k)
		}
	}
	oldestMinute, oldestSlot := minute-(minutes-1), (slot-(slots-1))*slotSeconds/60
	order := make([]string, 0, len(e.workers))
	for name, w := range e.workers {
		if !w.prune(oldestMinute, oldestSlot) {
			delete(e.workers, name)
			continue
		}
		order = append(order, name)
	}
	slices.Sort(order)
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
		a := e.workers[name]
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

// parseBuckets reads one minute or slot hash: per worker its packed "w:"
// field (or, written before the packing, Σd in "w:" and Σd², n, max d in
// "e:").
func parseBuckets(fields map[string]string, start, width int64) map[string]*economics.Bucket {
	perWorker := map[string]*economics.Bucket{}
	var packed map[string]bool // workers whose "w:" is packed (their "e:" is stale)
	for field, v := range fields {
		var name string
		var legacy bool
		switch {
		case strings.HasPrefix(field, "w:"):
			name = field[2:]
		case strings.HasPrefix(field, econField):
			name, legacy = field[len(econField):], true
		default:
			continue
		}
		b := perWorker[name]
		if b == nil {
			b = &economics.Bucket{Minute: start, Minutes: width}
			perWorker[name] = b
		}
		switch {
		case legacy:
			if !packed[name] {
				parseEconField(v, b)
			}
		case strings.IndexByte(v, '|') >= 0:
			if packed == nil {
				packed = map[string]bool{}
			}
			packed[name] = true
			*b = economics.Bucket{Minute: start, Minutes: width}
			parsePackedW(v, b)
		default:
			b.SumD, _ = strconv.ParseFloat(v, 64)
		}
	}
	for name, b := range perWorker {
		switch {
		case b.SumD <= 0 && b.Connected <= 0:
			delete(perWorker, name)
		case b.SumD > 0 && b.N == 0: // written before Σd², n and max d were kept: one share of the mean difficulty
			b.N, b.SumD2, b.MaxD = 1, b.SumD*b.SumD, b.SumD
		}
	}
	return perWorker
}

// parsePackedW reads "Σd|Σd²|n|max d[|connected s]" into b.
func parsePackedW(v string, b *economics.Bucket) {
	var parts [5]string
	n := 0
	for p := range strings.SplitSeq(v, "|") {
		if n == len(parts) {
			return
		}
		parts[n] = p
		n++
	}
	if n < 4 {
		return
	}
	b.SumD, _ = strconv.ParseFloat(parts[0], 64)
	b.SumD2, _ = strconv.ParseFloat(parts[1], 64)
	b.N, _ = strconv.ParseInt(parts[2], 10, 64)
	b.MaxD, _ = strconv.ParseFloat(parts[3], 64)
	if n == 5 {
		c, _ := strconv.ParseInt(parts[4], 10, 64)
		b.Connected = time.Duration(c) * time.Second
	}
}

// parseSumD returns Σd of a worker's bucket field, packed or not: what the
// API's hashrates read.
func parseSumD(v string) float64 {
	if i := strings.IndexByte(v, '|'); i >= 0 {
		v = v[:i]
	}
	d, _ := strconv.ParseFloat(v, 64)
	return d
}

// windowSums sums the buckets of one window with their connected time;
// a bucket with shares but no connected time counts as connected for its
// width, and a window without any connected time as connected from the
// start of its first bucket with a share to the end of its last complete
// bucket (see WorkerStats).
func windowSums(buckets []economics.Bucket, now time.Time, window time.Duration) economics.WindowSums {
	end := now.Unix()/60 - 1 // last complete minute, as SumBuckets
	first, width := int64(-1), int64(1)
	var connected, unrecorded time.Duration // recorded; buckets with shares but none recorded
	for i := range buckets {
		b := &buckets[i]
		w := max(b.Minutes, 1)
		if b.Minute <= end-int64(window/time.Minute) || b.Minute+w-1 > end {
			continue
		}
		width = w
		if b.Connected > 0 {
			connected += min(b.Connected, time.Duration(w)*time.Minute)
		} else if b.N > 0 {
			unrecorded += time.Duration(w) * time.Minute
		}
		if b.N > 0 && (first < 0 || b.Minute < first) {
			first = b.Minute
		}
	}
	s := economics.SumBuckets(buckets, now, window)
	switch {
	case connected > 0:
		s.Connected = connected + unrecorded
	case first >= 0:
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
