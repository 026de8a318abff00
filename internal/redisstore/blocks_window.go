package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// The verifiable side of found blocks: window archives, their roots and the
// on-chain commitments (docs/verify.md, docs/redis.md).

var _ payouts.WindowLedger = (*Store)(nil)

// splitSeq splits "instance:counter" ("" gives two empty strings).
func splitSeq(seq string) (instance, counter string, err error) {
	if seq == "" {
		return "", "", nil
	}
	i := strings.LastIndexByte(seq, ':')
	if i <= 0 || i == len(seq)-1 || strings.ContainsAny(seq, "|{}") {
		return "", "", fmt.Errorf("finding share sequence %q: want instance:counter", seq)
	}
	c := seq[i+1:]
	if _, err := strconv.ParseUint(c, 10, 64); err != nil || (len(c) > 1 && c[0] == '0') {
		return "", "", fmt.Errorf("finding share sequence %q: bad counter", seq)
	}
	return seq[:i], c, nil
}

// Fields of a block record that place its window among the PPLNS window's
// slices (keys_window.go): the archive is those slices themselves, kept
// while a block's window uses them (window pins), not a copy.
const (
	fieldWindowSliceFirst = "window_slice_first" // oldest slice of the window ("0": empty window)
	fieldWindowSliceLast  = "window_slice_last"  // newest slice: the one the finding share's batch sealed
	fieldWindowCutNeed    = "window_cut_need"    // units of the oldest slice inside the window ("": all of it)
	fieldWindowCutIndex   = "window_cut_index"   // the window's oldest leaf: its index in the oldest slice
	fieldWindowCutUnits   = "window_cut_units"   // and its units inside the window ("": all of them)
)

// snapshotBeginScript is the first step of a block's PPLNS snapshot: it
// places the window among the sealed slices, pins them, records the block
// (status snapshotting) and closes the round, all atomically. Its work is
// bounded by the number of live slices (about 80), not by the window's
// entries.
//
// KEYS: 1 block, 2 window cur, 3 sealed slices, 4 window limit, 5 window
// total, 6 the finding instance's applied accounting high-water mark (any
// key when the finding share is unknown), 7 window pins, 8 round, 9 block
// round archive, 10 round total, 11 block round total archive.
// ARGV: 1 hash, 2 height, 3 window limit in diff units ("0": the ledger's
// stored limit, and without one the whole window), 4 now (ms), 5 finding
// share's instance ("": unknown), 6 its counter, 7.. field/value pairs of
// the block record.
// Returns {0} when the block was recorded already, else {1, first slice,
// last slice, units needed from the first slice ("": all)}; the error
// NOTAPPLIED when the finding share's batch is not applied yet.
//
// The window ends at the slice the finding share's batch sealed (a share
// that found a block closes its batch, and the accounting script seals the
// open slice after such a batch); later slices are skipped, however many
// batches of any instance landed since. Walking older from there, slices
// are counted up to N, the one crossing N only in part (which of its leaves
// is cut is found by the second step, outside any script). Without that
// slice (finding share unknown, or trimmed already) the open slice is
// sealed now and the window is the last N units as of now ("late").
var snapshotBeginScript = redis.NewScript(luaUnits + `
local st = redis.call('HGET', KEYS[1], 'status')
if st and st ~= 'snapshotting' then return {0} end
if st then
  local v = redis.call('HMGET', KEYS[1], 'window_slice_first', 'window_slice_last', 'window_cut_need')
  return {1, v[1] or '0', v[2] or '0', v[3] or ''}
end
local limstr = ARGV[3]
if limstr == '0' then limstr = redis.call('GET', KEYS[4]) or '0' end
if not string.match(limstr, '^%d+$') then return redis.error_reply('bad window limit ' .. limstr) end
local nh, nl = parse(limstr)
if not nh then return redis.error_reply('window limit too large') end
local limited = nh > 0 or nl > 0
local inst, ctr = ARGV[5], ARGV[6]
local boundary = 'late'
local list = redis.call('LRANGE', KEYS[3], 0, -1)
local start = nil
if inst ~= '' then
  if not string.match(ctr, '^%d+$') or #ctr > 20 then return redis.error_reply('bad finding counter ' .. ctr) end
  local pctr = string.rep('0', 20 - #ctr) .. ctr
  local hw = redis.call('GET', KEYS[6])
  -- Batch sequences are above the sequences of their shares: a high-water
  -- mark above the finding counter means its batch was applied.
  if not hw or hw <= pctr then
    return redis.error_reply('NOTAPPLIED finding share ' .. inst .. ':' .. ctr .. ' not applied yet')
  end
  local want = inst .. ':' .. ctr
  for i, e in ipairs(list) do
    if string.match(e, '^%d+|%d+|(.*)$') == want then start = i; break end
  end
  if start then boundary = 'exact' end
end
if not start then
  local cur = redis.call('GET', KEYS[2])
  if cur then
    local i, u, o = string.match(cur, '^(%d+)|(%d+)|(.*)$')
    if not i then return redis.error_reply('malformed window cur: ' .. cur) end
    if u ~= '0' then
      local e = i .. '|' .. u .. '|'
      redis.call('LPUSH', KEYS[3], e)
      if o == '' then o = u end
      redis.call('SET', KEYS[2], (tonumber(i) + 1) .. '|0|' .. o)
      table.insert(list, 1, e)
    end
  end
  start = 1
end
local th, tl = 0, 0
local first, last, need = '0', '0', ''
local done = false
for i = start, #list do
  local id, u = string.match(list[i], '^(%d+)|(%d+)|')
  if not id then return redis.error_reply('malformed window slice: ' .. list[i]) end
  local uh, ul = parse(u)
  if not uh then return redis.error_reply('window slice too large: ' .. list[i]) end
  if last == '0' then last = id end
  first = id
  if limited then
    local lh, ll = sub(nh, nl, th, tl)
    if not lt(uh, ul, lh, ll) then
      if lt(lh, ll, uh, ul) then need = fmt(lh, ll) end
      th, tl = nh, nl
      done = true
      break
    end
  end
  th, tl = add(th, tl, uh, ul)
  if th > HMAX then return redis.error_reply('window total too large') end
end
-- Fewer than N units before the finding share although the ledger trims
-- (its window holds at least its limit): slices of this window were dropped
-- before the snapshot ran.
local truncated = 0
if limited and not done then
  local lim, tot = redis.call('GET', KEYS[4]), redis.call('GET', KEYS[5])
  if lim and tot then
    local ah, al = parse(tot)
    local bh, bl = parse(lim)
    if ah and bh and (bh > 0 or bl > 0) and not lt(ah, al, bh, bl) then truncated = 1 end
  end
end
if first ~= '0' then redis.call('ZADD', KEYS[7], first, ARGV[1]) end
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local finding = ''
if inst ~= '' then finding = inst .. ':' .. ctr end
redis.call('HSET', KEYS[1], 'status', 'snapshotting', 'window_limit', limstr,
  'window_units', fmt(th, tl), 'finding_seq', finding, 'window_boundary', boundary,
  'window_truncated', truncated, 'window_slice_first', first, 'window_slice_last', last,
  'window_cut_need', need, 'confirmations', 0, 'updated_at', ARGV[4])
-- Close the round: the share ledger starts a new one when its hash is gone.
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('RENAME', KEYS[8], KEYS[9]) end
if redis.call('EXISTS', KEYS[10]) == 1 then redis.call('RENAME', KEYS[10], KEYS[11]) end
return {1, first, last, need}
`)

// snapshotFinishScript is the last step of a snapshot: the window's
// summary, and the block enters the indexes (the unlocker and the API see
// it from now on). KEYS: 1 block, 2 blocks index, 3 unconfirmed index.
// ARGV: 1 hash, 2 height, 3 leaves, 4 contributors, 5 first seq, 6 last seq,
// 7 cut index, 8 cut units, 9 now (ms). Returns 1 when finished now, 0 when
// it was already.
var snapshotFinishScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'snapshotting' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'window_leaves', ARGV[3], 'window_shares', ARGV[3],
  'contributors', ARGV[4], 'window_first_seq', ARGV[5], 'window_last_seq', ARGV[6],
  'window_cut_index', ARGV[7], 'window_cut_units', ARGV[8], 'updated_at', ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
`)

// SnapshotBlock implements payouts.Ledger. It takes three steps, none of
// which holds Redis for long: snapshotBeginScript (bounded by the number of
// slices) fixes the window's slices and pins them; then the pinned slices,
// immutable, are read in chunks of sliceChunk entries to find the oldest
// slice's cut and sum the units per address, which are written in chunks;
// snapshotFinishScript completes the record. A call after a crash between
// the steps resumes from the record.
func (s *Store) SnapshotBlock(ctx context.Context, b payouts.FoundBlock, limit *big.Int) (bool, error) {
	h := b.Hash.String()
	lim := "0"
	if limit != nil && limit.Sign() > 0 {
		lim = limit.String()
	}
	inst, ctr, err := splitSeq(b.FindingSeq)
	if err != nil {
		return false, fmt.Errorf("redisstore: snapshot block %s: %w", h, err)
	}
	appliedKey := s.blockKey(h) // any {acct} key when the finding share is unknown
	if inst != "" {
		appliedKey = s.acctAppliedKey(inst)
	}
	args := []any{h, b.Height, lim, ms(time.Now()), inst, ctr,
		fieldHash, h,
		fieldHeight, b.Height,
		fieldFinder, b.Finder,
		fieldCoinbaseValue, b.CoinbaseValue,
		fieldOutpoint, b.CoinbaseOutpoint.String(),
		fieldNetDiff, strconv.FormatFloat(b.NetworkDifficulty, 'g', -1, 64),
		fieldFoundAt, ms(b.Time),
	}
	keys := []string{s.blockKey(h), s.win.cur, s.win.slices, s.win.limit, s.win.total, appliedKey, s.win.pins,
		s.roundKey(), s.blockRoundKey(h), s.roundTotalKey(), s.blockRoundTotalKey(h)}
	res, err := snapshotBeginScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil && redis.HasErrorPrefix(err, "NOTAPPLIED") {
		return false, fmt.Errorf("redisstore: snapshot block %s: %w: %w", h, payouts.ErrFindingShareNotApplied, err)
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: snapshot block %s: %w", h, err)
	}
	if n, _ := res[0].(int64); n == 0 {
		return false, nil
	}
	first, err1 := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	last, err2 := strconv.ParseInt(fmt.Sprint(res[2]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return false, fmt.Errorf("redisstore: snapshot block %s: slices %v..%v: %w", h, res[1], res[2], err)
	}
	need, _ := res[3].(string)
	pl := windowPlan{first: first, last: last}
	if need != "" {
		if pl.cutIndex, pl.cutUnits, err = s.findCut(ctx, first, need); err != nil {
			return false, fmt.Errorf("redisstore: snapshot block %s: %w", h, err)
		}
	}
	// Σ units per address, the leaves and the sequence bounds.
	sums := map[string]*big.Int{}
	var order []string
	total := new(big.Int)
	var leaves int64
	var firstSeq, lastSeq string
	err = s.planLeaves(ctx, pl, func(l window.Leaf) error {
		u, err := window.ParseUnits(l.Units)
		if err != nil {
			return err
		}
		if sums[l.Address] == nil {
			sums[l.Address] = new(big.Int)
			order = append(order, l.Address)
		}
		sums[l.Address].Add(sums[l.Address], u)
		total.Add(total, u)
		if leaves == 0 {
			firstSeq = l.FirstSeq
		}
		lastSeq = l.LastSeq
		leaves++
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("redisstore: snapshot block %s: %w", h, err)
	}
	if rec, err := s.rdb.HGet(ctx, s.blockKey(h), fieldWindowUnits).Result(); err != nil || rec != total.String() {
		return false, fmt.Errorf("redisstore: snapshot block %s: the window's slices sum to %s units, its record says %q (%v)", h, total, rec, err)
	}
	for i := 0; i < len(order); i += sliceChunk {
		part := order[i:min(i+sliceChunk, len(order))]
		vals := make([]any, 0, 2*len(part))
		for _, a := range part {
			vals = append(vals, a, sums[a].String())
		}
		if err := s.rdb.HSet(ctx, s.blockSharesKey(h), vals...).Err(); err != nil {
			return false, fmt.Errorf("redisstore: snapshot block %s: write sums: %w", h, err)
		}
	}
	n, err := snapshotFinishScript.Run(ctx, s.rdb, []string{s.blockKey(h), s.blocksIndexKey(), s.unconfirmedBlocksKey()},
		h, b.Height, leaves, len(order), firstSeq, lastSeq, pl.cutIndex, pl.cutUnits, ms(time.Now())).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: snapshot block %s: finish: %w", h, err)
	}
	return n == 1, nil
}

// sliceChunk is how many entries one read of a window slice takes (an
// LRANGE of the addresses and an HMGET of their entries), and how many
// fields one write of a block's sums holds: each call holds Redis for well
// under a millisecond (1,000 took up to a few ms under load).
const sliceChunk = 500

// windowPlan is where a block's window lies among the slices: slices first
// to last, the first one from its entry cutIndex, whose units inside the
// window are cutUnits ("": all of them).
type windowPlan struct {
	first, last int64 // 0: an empty window
	cutIndex    int64
	cutUnits    string
}

// sliceEntries calls fn with the entries of slice id from index from on, in
// order, sliceChunk at a time. A sealed slice is immutable, and one a
// block's window uses is pinned, so the chunks are consistent.
func (s *Store) sliceEntries(ctx context.Context, id, from int64, fn func(i int64, l window.Leaf) error) error {
	return s.sliceEntriesBy(ctx, id, from, sliceChunk, fn)
}

// sliceEntriesBy is sliceEntries reading chunk entries at a time (a proof
// reads a group of leaves: about that many entries, not sliceChunk).
func (s *Store) sliceEntriesBy(ctx context.Context, id, from, chunk int64, fn func(i int64, l window.Leaf) error) error {
	ok, hk := s.sliceOrderKey(id), s.sliceKey(id)
	for start := from; ; start += chunk {
		addrs, err := s.rdb.LRange(ctx, ok, start, start+chunk-1).Result()
		if err != nil {
			return fmt.Errorf("read window slice %d: %w", id, err)
		}
		if len(addrs) == 0 {
			return nil
		}
		vals, err := s.rdb.HMGet(ctx, hk, addrs...).Result()
		if err != nil {
			return fmt.Errorf("read window slice %d: %w", id, err)
		}
		for i, v := range vals {
			e, _ := v.(string)
			f, rest, ok1 := strings.Cut(e, "|")
			l, u, ok2 := strings.Cut(rest, "|")
			if !ok1 || !ok2 {
				return fmt.Errorf("window slice %d: malformed entry %q of %s (slice deleted?)", id, e, addrs[i])
			}
			if err := fn(start+int64(i), window.Leaf{Address: addrs[i], Units: u, FirstSeq: f, LastSeq: l}); err != nil {
				return err
			}
		}
		if int64(len(addrs)) < chunk {
			return nil
		}
	}
}

// findCut finds the window's oldest leaf in its oldest slice: walking the
// slice from its newest entry, the one that brings the sum to need units,
// and the part of its units inside the window.
func (s *Store) findCut(ctx context.Context, id int64, need string) (int64, string, error) {
	want, ok := new(big.Int).SetString(need, 10)
	if !ok {
		return 0, "", fmt.Errorf("window cut %q", need)
	}
	var units []*big.Int
	err := s.sliceEntries(ctx, id, 0, func(_ int64, l window.Leaf) error {
		u, err := window.ParseUnits(l.Units)
		units = append(units, u)
		return err
	})
	if err != nil {
		return 0, "", err
	}
	sum := new(big.Int)
	for i := len(units) - 1; i >= 0; i-- {
		rest := new(big.Int).Sub(want, sum)
		if units[i].Cmp(rest) >= 0 {
			return int64(i), rest.String(), nil
		}
		sum.Add(sum, units[i])
	}
	return 0, "", fmt.Errorf("window slice %d sums to %s units, fewer than the %s its record needs", id, sum, need)
}

// planLeaves calls fn with the leaves of a window, oldest first: the
// entries of its slices, consecutive entries of one address (the last of a
// slice and the first of the next) merged into one leaf.
func (s *Store) planLeaves(ctx context.Context, pl windowPlan, fn func(window.Leaf) error) error {
	if pl.first == 0 {
		return nil
	}
	return s.planLeavesFrom(ctx, pl, pl.first, pl.cutIndex, sliceChunk, func(l window.Leaf, _, _ int64) error { return fn(l) })
}

// planLeavesFrom calls fn with the leaves of a window from the leaf that
// starts at entry pos of slice id on, oldest first, each with the slice and
// entry it starts at (a proof index's cursor), reading chunk entries at a
// time. fn may stop the walk with errStopLeaves.
func (s *Store) planLeavesFrom(ctx context.Context, pl windowPlan, startID, startPos, chunk int64, fn func(l window.Leaf, id, pos int64) error) error {
	var run window.Leaf
	var runUnits *big.Int
	var runID, runPos int64
	for id := startID; id <= pl.last; id++ {
		from := int64(0)
		if id == startID {
			from = startPos
		}
		err := s.sliceEntriesBy(ctx, id, from, chunk, func(i int64, l window.Leaf) error {
			if id == pl.first && i == pl.cutIndex && pl.cutUnits != "" {
				l.Units = pl.cutUnits
			}
			u, err := window.ParseUnits(l.Units)
			if err != nil {
				return fmt.Errorf("slice %d entry %d: %w", id, i, err)
			}
			if runUnits != nil && run.Address == l.Address {
				runUnits.Add(runUnits, u)
				run.LastSeq = l.LastSeq
				return nil
			}
			if runUnits != nil {
				run.Units = runUnits.String()
				if err := fn(run, runID, runPos); err != nil {
					return err
				}
			}
			run, runUnits, runID, runPos = l, u, id, i
			return nil
		})
		if errors.Is(err, errStopLeaves) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	if runUnits != nil {
		run.Units = runUnits.String()
		if err := fn(run, runID, runPos); err != nil && !errors.Is(err, errStopLeaves) {
			return err
		}
	}
	return nil
}

// errStopLeaves ends a walk of planLeavesFrom early, without error.
var errStopLeaves = errors.New("enough leaves")

// setRootScript stores a window's root once and queues it for the on-chain
// commitment. KEYS: 1 block, 2 commit pending. ARGV: 1 hash, 2 root hex,
// 3 total units, 4 height. Returns 1 when set now, 0 when it was set
// already (to the same root); false when the block is unknown.
var setRootScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cur = redis.call('HGET', KEYS[1], 'window_root')
if cur then
  if cur ~= ARGV[2] then return redis.error_reply('ROOTMISMATCH stored root ' .. cur .. ', computed ' .. ARGV[2]) end
  return 0
end
local units = redis.call('HGET', KEYS[1], 'window_units')
if units ~= ARGV[3] then
  return redis.error_reply('TOTALMISMATCH record says ' .. tostring(units) .. ' units, archive sums to ' .. ARGV[3])
end
redis.call('HSET', KEYS[1], 'window_root', ARGV[2])
if not redis.call('HGET', KEYS[1], 'committed_in') then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
return 1
`)

// SetWindowRoot implements payouts.WindowLedger.
func (s *Store) SetWindowRoot(ctx context.Context, hash chainhash.Hash, height int64, root window.Node) (bool, error) {
	h := hash.String()
	n, err := setRootScript.Run(ctx, s.rdb, []string{s.blockKey(h), s.commitPendingKey()},
		h, root.Hash.String(), root.Sum.String(), height).Int()
	if errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: set window root of %s: %w", h, err)
	}
	return n == 1, nil
}

// archiveChunk is how many archive elements one LRANGE reads.
const archiveChunk = 10_000

// ParseArchiveLeaf parses one element of a window archive.
func ParseArchiveLeaf(e string) (window.Leaf, error) {
	p := strings.Split(e, "|")
	if len(p) != 4 || p[2] == "" {
		return window.Leaf{}, fmt.Errorf("malformed window archive element %q", e)
	}
	return window.Leaf{FirstSeq: p[0], LastSeq: p[1], Address: p[2], Units: p[3]}, nil
}

// WindowLeaves implements payouts.WindowLedger: it calls fn with every leaf
// of the block's window, oldest first, reading sliceChunk entries at a time
// from the slices the window uses (pinned, immutable; archives written
// before slices existed are read from their list, archiveChunk at a time).
// It fails with payouts.ErrArchivePruned when the retention released the
// archive.
func (s *Store) WindowLeaves(ctx context.Context, hash chainhash.Hash, fn func(window.Leaf) error) error {
	h := hash.String()
	pl, want, sliced, err := s.archivePlan(ctx, h)
	if err != nil {
		return err
	}
	var n int64
	count := func(l window.Leaf) error {
		n++
		return fn(l)
	}
	if sliced {
		if err := s.planLeaves(ctx, pl, count); err != nil {
			return fmt.Errorf("redisstore: window of %s, leaf %d: %w", h, n, err)
		}
	} else if err := s.legacyArchive(ctx, h, count); err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("redisstore: window of %s has %d leaves, its record says %d (pruned while read?)", h, n, want)
	}
	return nil
}

// archivePlan reads where block h's window archive is: its leaf count and,
// for a window kept in slices (sliced), where among them; otherwise the
// archive is a list from before slices. It fails with
// payouts.ErrBlockNotFound and payouts.ErrArchivePruned.
func (s *Store) archivePlan(ctx context.Context, h string) (pl windowPlan, leaves int64, sliced bool, err error) {
	rec, err := s.rdb.HMGet(ctx, s.blockKey(h), fieldHash, fieldWindowLeaves, fieldWindowArchive,
		fieldWindowSliceFirst, fieldWindowSliceLast, fieldWindowCutIndex, fieldWindowCutUnits).Result()
	if err != nil {
		return pl, 0, false, fmt.Errorf("redisstore: read block %s: %w", h, err)
	}
	if rec[0] == nil {
		return pl, 0, false, fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if rec[2] == "pruned" {
		return pl, 0, false, fmt.Errorf("redisstore: window of %s: %w", h, payouts.ErrArchivePruned)
	}
	leaves = -1 // a record from before archives: no count
	if v, ok := rec[1].(string); ok {
		if leaves, err = strconv.ParseInt(v, 10, 64); err != nil {
			return pl, 0, false, fmt.Errorf("redisstore: block %s: window_leaves %q", h, v)
		}
	}
	if leaves < 0 {
		return pl, 0, false, fmt.Errorf("redisstore: block %s was recorded without a window archive: %w", h, payouts.ErrArchivePruned)
	}
	first, sliced := rec[3].(string)
	if !sliced {
		return pl, leaves, false, nil
	}
	last, _ := rec[4].(string)
	cut, _ := rec[5].(string)
	pl.cutUnits, _ = rec[6].(string)
	var e1, e2, e3 error
	pl.first, e1 = strconv.ParseInt(first, 10, 64)
	pl.last, e2 = strconv.ParseInt(last, 10, 64)
	if cut != "" {
		pl.cutIndex, e3 = strconv.ParseInt(cut, 10, 64)
	}
	if err := errors.Join(e1, e2, e3); err != nil {
		return pl, 0, false, fmt.Errorf("redisstore: block %s: window slices: %w", h, err)
	}
	return pl, leaves, true, nil
}

// legacyArchive reads an archive written before windows were kept in
// slices: a list of "first|last|address|units", oldest first.
func (s *Store) legacyArchive(ctx context.Context, h string, fn func(window.Leaf) error) error {
	for start := int64(0); ; start += archiveChunk {
		els, err := s.rdb.LRange(ctx, s.blockWindowKey(h), start, start+archiveChunk-1).Result()
		if err != nil {
			return fmt.Errorf("redisstore: read window of %s: %w", h, err)
		}
		for i, e := range els {
			l, err := ParseArchiveLeaf(e)
			if err != nil {
				return fmt.Errorf("redisstore: window of %s, leaf %d: %w", h, start+int64(i), err)
			}
			if err := fn(l); err != nil {
				return err
			}
		}
		if len(els) < archiveChunk {
			return nil
		}
	}
}

// PruneWindowArchives implements payouts.WindowLedger: it releases the
// window archives of the blocks that are both outside the keepBlocks
// highest recorded blocks and found before now − keepFor, and marks their
// records "pruned" (root, total and sequence bounds stay). Releasing a
// window removes its pin; the slices no pin and no live window use any more
// are then deleted (UNLINK frees their memory off Redis's main thread).
func (s *Store) PruneWindowArchives(ctx context.Context, keepBlocks int, keepFor time.Duration, now time.Time) (int, error) {
	hashes, err := s.rdb.ZRevRange(ctx, s.blocksIndexKey(), int64(keepBlocks), -1).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: list blocks: %w", err)
	}
	cutoff := now.Add(-keepFor).UnixMilli()
	pruned := 0
	for _, h := range hashes {
		v, err := s.rdb.HMGet(ctx, s.blockKey(h), fieldFoundAt, fieldWindowArchive, fieldWindowLeaves, fieldWindowSliceFirst).Result()
		if err != nil {
			return pruned, fmt.Errorf("redisstore: read block %s: %w", h, err)
		}
		if v[1] == "pruned" || v[2] == nil {
			continue // pruned already, or recorded before archives
		}
		found, _ := v[0].(string)
		at, err := strconv.ParseInt(found, 10, 64)
		if err != nil || at >= cutoff {
			continue
		}
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if v[3] != nil {
				p.ZRem(ctx, s.win.pins, h)
			} else {
				p.Unlink(ctx, s.blockWindowKey(h))
			}
			p.Unlink(ctx, s.blockProofIndexKey(h))
			p.HSet(ctx, s.blockKey(h), fieldWindowArchive, "pruned")
			return nil
		})
		if err != nil {
			return pruned, fmt.Errorf("redisstore: prune window of %s: %w", h, err)
		}
		pruned++
	}
	if err := s.collectSlices(ctx); err != nil {
		return pruned, err
	}
	return pruned, nil
}

// sliceGCScript returns the range of slice ids whose keys may be deleted:
// from the gc mark up to (not including) the oldest slice a pin or the live
// window uses. KEYS: 1 gc, 2 pins, 3 sealed slices, 4 cur.
var sliceGCScript = redis.NewScript(`
local from = tonumber(redis.call('GET', KEYS[1]) or '1')
local to
local cur = redis.call('GET', KEYS[4])
if cur then to = tonumber(string.match(cur, '^(%d+)|')) end
local oldest = redis.call('LINDEX', KEYS[3], -1)
if oldest then to = tonumber(string.match(oldest, '^(%d+)|')) end
local pin = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #pin > 0 and (not to or tonumber(pin[2]) < to) then to = tonumber(pin[2]) end
if not to then to = from end
return {from, to}
`)

// collectSlices deletes the keys of the slices that no pin and no live
// window use, 100 slices per call, and advances the gc mark. The window
// list of versions before slices is not touched: MigrateWindow moves it
// into the window and deletes it.
func (s *Store) collectSlices(ctx context.Context) error {
	r, err := sliceGCScript.Run(ctx, s.rdb, []string{s.win.gc, s.win.pins, s.win.slices, s.win.cur}).Int64Slice()
	if err != nil {
		return fmt.Errorf("redisstore: window slices to delete: %w", err)
	}
	for from := r[0]; from < r[1]; from += 100 {
		to := min(from+100, r[1])
		keys := make([]string, 0, 2*(to-from))
		for id := from; id < to; id++ {
			keys = append(keys, s.sliceKey(id), s.sliceOrderKey(id))
		}
		if err := s.rdb.Unlink(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("redisstore: delete window slices: %w", err)
		}
		if err := s.rdb.Set(ctx, s.win.gc, to, 0).Err(); err != nil {
			return fmt.Errorf("redisstore: window gc mark: %w", err)
		}
	}
	return nil
}

// PendingCommitments returns the windows awaiting an on-chain commitment,
// lowest height first, at most window.MaxCommitted (the job builder's
// blocktemplate.CommitmentSource, through the daemon).
func (s *Store) PendingCommitments(ctx context.Context) ([]window.Committed, error) {
	_, w, err := s.pendingCommitments(ctx)
	return w, err
}

func (s *Store) pendingCommitments(ctx context.Context) ([]string, []window.Committed, error) {
	hashes, err := s.rdb.ZRange(ctx, s.commitPendingKey(), 0, window.MaxCommitted-1).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: pending commitments: %w", err)
	}
	w, err := s.committedOf(ctx, hashes)
	return hashes, w, err
}

// commitDigestTTL is how long a commitment digest's list is kept: far
// longer than a job lives.
const commitDigestTTL = 7 * 24 * time.Hour

func (s *Store) committedOf(ctx context.Context, hashes []string) ([]window.Committed, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(hashes))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = p.HMGet(ctx, s.blockKey(h), fieldWindowRoot, fieldWindowUnits)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: read window roots: %w", err)
	}
	out := make([]window.Committed, 0, len(hashes))
	for i, c := range cmds {
		v := c.Val()
		root, _ := v[0].(string)
		units, _ := v[1].(string)
		r, err := window.ParseHash(root)
		if err != nil {
			return nil, fmt.Errorf("redisstore: window root of %s: %w", hashes[i], err)
		}
		u, ok := new(big.Int).SetString(units, 10)
		if !ok {
			return nil, fmt.Errorf("redisstore: window units of %s: %q", hashes[i], units)
		}
		bh, err := window.HexBlockHash(hashes[i])
		if err != nil {
			return nil, err
		}
		out = append(out, window.Committed{Block: bh, Root: r, Total: u})
	}
	return out, nil
}

// markCommittedScript records that block KEYS[1]'s coinbase commits the
// windows of the ARGV hashes: each leaves the pending set and names the
// block (the first committing block it was recorded with: a window two jobs
// committed keeps the first); the block lists them. KEYS: 1 block, 2 block commits, 3 pending,
// then one block key per ARGV[2..]. ARGV: 1 the committing block's hash,
// 2.. the committed hashes in order. Returns 0 when already recorded.
var markCommittedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for i = 2, #ARGV do
  redis.call('ZREM', KEYS[3], ARGV[i])
  redis.call('HSETNX', KEYS[2 + i], 'committed_in', ARGV[1])
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
return 1
`)

// MarkCommitted implements payouts.WindowLedger: the windows c covers are
// the list the job builder kept for its digest (else the first c.Count
// pending ones); their roots must hash to c.Digest. They are then recorded
// as committed in block hash (a window that an earlier block committed too
// keeps that one). A commitment that matches nothing known returns an error
// wrapping window.ErrMismatch and changes nothing; those windows are
// committed by a later block.
func (s *Store) MarkCommitted(ctx context.Context, hash chainhash.Hash, c window.Commitment) error {
	h := hash.String()
	if n, err := s.rdb.Exists(ctx, s.blockCommitsKey(h)).Result(); err != nil {
		return fmt.Errorf("redisstore: commits of %s: %w", h, err)
	} else if n == 1 {
		return nil // recorded already (a retry)
	}
	// The list the job builder committed to; without it (expired, or a job
	// from before lists were kept), the first pending windows.
	var hashes []string
	list, err := s.rdb.Get(ctx, s.commitDigestKey(c.Digest.String())).Result()
	switch {
	case err == nil && list != "":
		hashes = strings.Split(list, ",")
	case err == nil || errors.Is(err, redis.Nil):
		if hashes, err = s.rdb.ZRange(ctx, s.commitPendingKey(), 0, int64(c.Count)-1).Result(); err != nil {
			return fmt.Errorf("redisstore: pending commitments: %w", err)
		}
	default:
		return fmt.Errorf("redisstore: commitment list: %w", err)
	}
	w, err := s.committedOf(ctx, hashes)
	if err != nil {
		return err
	}
	if err := c.Check(w); err != nil {
		return fmt.Errorf("redisstore: commitment in block %s: %w", h, err)
	}
	keys := []string{s.blockKey(h), s.blockCommitsKey(h), s.commitPendingKey()}
	args := []any{h}
	for _, x := range hashes {
		keys = append(keys, s.blockKey(x))
		args = append(args, x)
	}
	if err := markCommittedScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisstore: mark windows committed in %s: %w", h, err)
	}
	return nil
}

// BlockCommits returns the hashes of the blocks whose windows the coinbase
// of block hash commits, in commitment order, with their roots and totals.
func (s *Store) BlockCommits(ctx context.Context, hash chainhash.Hash) ([]string, []window.Committed, error) {
	hashes, err := s.rdb.LRange(ctx, s.blockCommitsKey(hash.String()), 0, -1).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: commits of %s: %w", hash, err)
	}
	w, err := s.committedOf(ctx, hashes)
	return hashes, w, err
}

var _ blocktemplate.CommitmentSource = (*Store)(nil)

// CommitmentScript implements blocktemplate.CommitmentSource: the OP_RETURN
// script committing the pending windows (docs/verify.md), nil when none is
// pending.
// It keeps the list the digest covers (commitDigestKey), so the block that
// carries it is matched to its windows whatever was committed meanwhile.
func (s *Store) CommitmentScript(ctx context.Context) ([]byte, error) {
	hashes, w, err := s.pendingCommitments(ctx)
	if err != nil || len(w) == 0 {
		return nil, err
	}
	script, err := window.CommitScript(w)
	if err != nil {
		return nil, fmt.Errorf("redisstore: commitment script: %w", err)
	}
	d, _ := window.CommitDigest(w)
	if err := s.rdb.Set(ctx, s.commitDigestKey(d.String()), strings.Join(hashes, ","), commitDigestTTL).Err(); err != nil {
		return nil, fmt.Errorf("redisstore: commitment list: %w", err)
	}
	return script, nil
}
