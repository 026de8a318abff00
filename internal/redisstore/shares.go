package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/shares/ledger"
)

var _ ledger.Store = (*Store)(nil)

// Tunables of the statistics keys.
const (
	// statsTTL keeps per-worker and per-address statistics one hour past the
	// longest hashrate window.
	statsTTL = 25 * time.Hour
	// appliedTTL is how long an idle instance's high-water marks live; a
	// spool older than that would be replayed without the duplicate guard.
	appliedTTL = 30 * 24 * time.Hour
	// minuteTTL keeps minute buckets past the 1-hour hashrate window.
	minuteTTL = 2 * time.Hour
	// slotSeconds is the width of the buckets of the 24-hour hashrate;
	// daySlots of them cover the 24 hours.
	slotSeconds = 600
	daySlots    = 24 * 3600 / slotSeconds
	// recentShares is how many latest shares are kept per address.
	recentShares = 50
)

// windowSlices is how many slices a window of N units spans: the open
// slice is sealed once it holds N/windowSlices units (L/80, L = 1.25 N), so
// a window has about windowSlices slices and, since a slice holds one entry
// per payout address, about windowSlices × active addresses leaves, however
// many shares it holds (docs/redis.md, "The PPLNS window").
const windowSlices = 64

// acctScript adds a batch to the PPLNS window and the round totals, once
// per batch sequence. The window is a list of sealed slices plus the open
// slice; a slice holds one entry per payout address, "first|last|units"
// (the sequences of its first and last share in the slice, Σ units), with
// the addresses in the order of their first share. The batch's shares are
// added to the open slice's entries; the slice is then sealed if the batch
// ends with a share that found a block (so that block's window ends exactly
// here), or once the slice holds L/80 = N/64 units, or, while no limit is
// known, after every batch. Then the oldest sealed slices are dropped while
// the rest still reaches the limit L; a dropped slice's keys are deleted
// unless a block's window still uses them (window pins: its archive). The
// work is bounded by the batch: no step walks the window.
//
// KEYS: 1 window cur, 2 window total, 3 window limit, 4 round, 5 round
// total, 6 sealed slices, 7 window pins, 8 window gc, 9 applied (last: the
// replicated write fences on it).
// ARGV: 1 batch seq (20 digits), 2 window limit units ("0": keep the stored
// one), 3 applied TTL seconds, 4 slice key prefix, 5 the sequence of the
// batch's block share ("": none), then per share: seq, address, units.
// Returns the number of entries added to the open slice (0: already
// applied, or every address had one) and the slices dropped.
var acctScript = redis.NewScript(luaUnits + `
local hwm = redis.call('GET', KEYS[9])
if hwm and hwm >= ARGV[1] then return {0, 0} end
local th, tl = parse(redis.call('GET', KEYS[2]))
local rh, rl = 0, 0
-- The block-found snapshot renames the round hash away; a missing hash means
-- a new round, so its total starts again from zero.
if redis.call('EXISTS', KEYS[4]) == 1 then rh, rl = parse(redis.call('GET', KEYS[5])) end
local id, ch, cl, oldest = 1, 0, 0, ''
local cur = redis.call('GET', KEYS[1])
if cur then
  local i, u, o = string.match(cur, '^(%d+)|(%d+)|(%d*)$')
  id = tonumber(i)
  ch, cl = parse(u)
  oldest = o
end
local sk = ARGV[4] .. id
local per, order = {}, {}
for i = 6, #ARGV, 3 do
  local seq, addr, u = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local uh, ul = parse(u)
  th, tl = add(th, tl, uh, ul)
  rh, rl = add(rh, rl, uh, ul)
  ch, cl = add(ch, cl, uh, ul)
  local p = per[addr]
  if not p then
    p = {seq, seq, 0, 0}
    per[addr] = p
    order[#order + 1] = addr
  end
  p[2] = seq
  p[3], p[4] = add(p[3], p[4], uh, ul)
end
local added = 0
for _, addr in ipairs(order) do
  local p = per[addr]
  local e = redis.call('HGET', sk, addr)
  if e then
    local f, u = string.match(e, '^([^|]*)|[^|]*|(%d+)$')
    local eh, el = parse(u)
    redis.call('HSET', sk, addr, f .. '|' .. p[2] .. '|' .. fmt(add(eh, el, p[3], p[4])))
  else
    redis.call('RPUSH', sk .. ':order', addr)
    redis.call('HSET', sk, addr, p[1] .. '|' .. p[2] .. '|' .. fmt(p[3], p[4]))
    added = added + 1
  end
  local qh, ql = parse(redis.call('HGET', KEYS[4], addr))
  redis.call('HSET', KEYS[4], addr, fmt(add(qh, ql, p[3], p[4])))
end
redis.call('SET', KEYS[5], fmt(rh, rl))
local limit = ARGV[2]
if limit == '0' then
  limit = redis.call('GET', KEYS[3])
else
  redis.call('SET', KEYS[3], limit)
end
local limited = limit and limit ~= '0'
local nh, nl = 0, 0
if limited then nh, nl = parse(limit) end
local seal = ARGV[5] ~= '' or not limited
if not seal then
  -- 80 × the open slice's units ≥ L
  local mh, ml = ch * 80, cl * 80
  local carry = math.floor(ml / B)
  seal = ge(mh + carry, ml - carry * B, nh, nl)
end
if seal then
  local u = fmt(ch, cl)
  redis.call('LPUSH', KEYS[6], id .. '|' .. u .. '|' .. ARGV[5])
  if oldest == '' then oldest = u end
  id, ch, cl = id + 1, 0, 0
end
local popped = 0
if limited and oldest ~= '' then
  local oh, ol = parse(oldest)
  while true do
    local xh, xl = sub(th, tl, oh, ol)
    if not ge(xh, xl, nh, nl) then break end
    local e = redis.call('RPOP', KEYS[6])
    local oid = tonumber(string.match(e, '^(%d+)|'))
    th, tl = xh, xl
    popped = popped + 1
    local pin = redis.call('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')
    if #pin == 0 or tonumber(pin[2]) > oid then
      redis.call('UNLINK', ARGV[4] .. oid, ARGV[4] .. oid .. ':order')
      if tonumber(redis.call('GET', KEYS[8]) or '1') == oid then redis.call('SET', KEYS[8], oid + 1) end
    end
    local nxt = redis.call('LINDEX', KEYS[6], -1)
    if not nxt then oldest = ''; break end
    oldest = string.match(nxt, '^%d+|(%d+)|')
    oh, ol = parse(oldest)
  end
end
redis.call('SET', KEYS[1], id .. '|' .. fmt(ch, cl) .. '|' .. oldest)
redis.call('SET', KEYS[2], fmt(th, tl))
redis.call('SET', KEYS[9], ARGV[1], 'EX', ARGV[3])
return {added, popped}
`)

// statsScript applies a list of statistics operations once per batch
// sequence. KEYS[1] is the applied key, the others are the keys the
// operations name by index. ARGV: batch seq, applied TTL seconds, then
// groups of four: op, key index, field, value ("lpush" is followed by value
// more arguments, the elements).
var statsScript = redis.NewScript(luaPackedW + `
local hwm = redis.call('GET', KEYS[1])
if hwm and hwm >= ARGV[1] then return 0 end
local i = 3
while i <= #ARGV do
  local op, k, f, v = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  if op == 'hincrby' then
    redis.call('HINCRBY', k, f, v)
  elseif op == 'hincrbyfloat' then
    redis.call('HINCRBYFLOAT', k, f, v)
  elseif op == 'hmax' then
    local c = tonumber(redis.call('HGET', k, f) or '-1')
    if tonumber(v) > c then redis.call('HSET', k, f, v) end
  elseif op == 'hset' then
    redis.call('HSET', k, f, v)
  elseif op == 'hw' then
    -- A worker's bucket "Σd|Σd²|n|max d[|connected s]" (presence.go): add
    -- the sums and counts, keep the larger max and the connected time.
    local d, q, n, m = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    local cd, cq, cn, cm, cc = unpackw(redis.call('HGET', k, f))
    redis.call('HSET', k, f, packw(cd + tonumber(d), cq + tonumber(q), cn + tonumber(n), math.max(cm, tonumber(m)), cc))
  elseif op == 'hsetnx' then
    redis.call('HSETNX', k, f, v)
  elseif op == 'lpush' then
    -- v values follow; the list is capped at f entries.
    local n = tonumber(v)
    redis.call('LPUSH', k, unpack(ARGV, i, i + n - 1))
    redis.call('LTRIM', k, 0, tonumber(f) - 1)
    i = i + n
  elseif op == 'expire' then
    redis.call('EXPIRE', k, v)
  else
    return redis.error_reply('unknown stats op ' .. op)
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
`)

// ApplyBatch implements ledger.Store: one pipeline holding the accounting
// script (window, round totals) and the statistics script calls (one per
// statistics shard the batch touches and one for the pool-wide keys,
// keys_shares.go), each skipped if the instance's high-water mark for its
// keys already covers b.Seq; b.Kind leaves the accounting or the statistics
// out (an accounting batch is written before its shares are acknowledged,
// the statistics of many such batches follow as one statistics batch).
// Arguments are built by scriptArgs (see there: a paced pool pays this per
// share).
func (s *Store) ApplyBatch(ctx context.Context, b *ledger.Batch, windowLimit string) error {
	if windowLimit == "" {
		windowLimit = "0"
	}
	// acctCmd is the accounting EVALSHA command, acctKeys and acctArgs
	// its KEYS and ARGV parts; stats the statistics calls.
	var acctCmd []any
	var acctKeys []string
	var acctArgs []any
	var stats []statsCall
	if len(b.Shares) > 0 && b.Kind != ledger.BatchStats {
		a := getScriptArgs()
		defer a.release()
		s.acctOps(a, b, windowLimit)
		acctCmd, acctKeys, acctArgs = a.command(acctScript.Hash())
	}
	if b.Kind != ledger.BatchAccounting {
		a := getScriptArgs()
		defer a.release()
		s.statsOps(a, b)
		for _, c := range a.calls {
			if c != nil && len(c.ends) > 2 { // more than the batch seq and TTL: something to write
				cmd, _, _ := c.command(statsScript.Hash())
				stats = append(stats, statsCall{cmd: cmd})
			}
		}
	}
	run := func() error {
		if s.minReplicas > 0 { // acknowledged means replicated (replicated.go)
			return s.applyReplicated(ctx, acctKeys, acctArgs, stats)
		}
		switch {
		case acctCmd != nil && len(stats) == 0: // a group commit: one call, no pipeline
			return s.rdb.Do(ctx, acctCmd...).Err()
		case acctCmd == nil && len(stats) == 1:
			return s.rdb.Do(ctx, stats[0].cmd...).Err()
		case acctCmd == nil && len(stats) == 0:
			return nil
		}
		return s.pipeline(ctx, s.rdb, acctCmd, stats)
	}
	err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// First use on this server (or after a restart without the script
		// cache): load both and try once more (on a cluster, Load reaches
		// every master). Calls applied in the first attempt are skipped by
		// their high-water marks.
		if lerr := acctScript.Load(ctx, s.rdb).Err(); lerr != nil {
			return fmt.Errorf("redisstore: load share script: %w", lerr)
		}
		if lerr := statsScript.Load(ctx, s.rdb).Err(); lerr != nil {
			return fmt.Errorf("redisstore: load stats script: %w", lerr)
		}
		err = run()
	}
	if err != nil {
		return fmt.Errorf("redisstore: apply share batch: %w", err)
	}
	return nil
}

// statsCall is one statistics script call of a batch: the EVALSHA command
// for the keys of one hash tag.
type statsCall struct {
	cmd []any
}

// pipeline sends acctCmd (if any) and the statistics calls through c in one
// pipeline (on a cluster go-redis splits it per master) and returns the
// first error.
func (s *Store) pipeline(ctx context.Context, c redis.UniversalClient, acctCmd []any, stats []statsCall) error {
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if acctCmd != nil {
			p.Do(ctx, acctCmd...)
		}
		for _, sc := range stats {
			p.Do(ctx, sc.cmd...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return c.Err()
		}
	}
	return nil
}

// acctOps adds a batch's accounting script keys and arguments to a.
func (s *Store) acctOps(a *scriptArgs, b *ledger.Batch, windowLimit string) {
	fixed := s.fixedKeys(a, b.Instance)
	a.addKey(s.win.cur)
	a.addKey(s.win.total)
	a.addKey(s.win.limit)
	a.addKey(fixed[3]) // round
	a.addKey(fixed[4]) // round total
	a.addKey(s.win.slices)
	a.addKey(s.win.pins)
	a.addKey(s.win.gc)
	a.addKey(fixed[5]) // applied: last (replicated.go fences on it)
	a.seq(b.Seq)
	a.str(windowLimit)
	a.int(int64(appliedTTL / time.Second))
	a.str(s.win.slice)
	// A share that found a block closes its batch; the batch seals the
	// window's open slice, named by that share.
	for i := len(b.Shares) - 1; i >= 0; i-- {
		if b.Shares[i].Share.Block {
			a.buf = append(a.buf, b.Instance...)
			a.buf = append(a.buf, ':')
			a.buf = strconv.AppendUint(a.buf, b.Shares[i].Seq, 10)
			break
		}
	}
	a.ends = append(a.ends, len(a.buf))
	for i := range b.Shares {
		e := &b.Shares[i]
		a.buf = append(a.buf, b.Instance...)
		a.buf = append(a.buf, ':')
		a.buf = strconv.AppendUint(a.buf, e.Seq, 10)
		a.ends = append(a.ends, len(a.buf))
		a.str(e.Share.Address)
		a.str(e.Units)
	}
}

// fixedKeys returns the keys every batch of instance names (the six
// accounting keys, the pool statistics' applied key and the pool
// statistics),
// built once per scratch and store rather than per batch.
func (s *Store) fixedKeys(a *scriptArgs, instance string) *[8]string {
	if a.fixedPrefix != s.prefix || a.fixedInstance != instance || a.fixed[0] == "" {
		a.fixedPrefix, a.fixedInstance = s.prefix, instance
		a.fixed = [8]string{s.windowKey(), s.windowTotalKey(), s.windowLimitKey(),
			s.roundKey(), s.roundTotalKey(), s.acctAppliedKey(instance),
			s.statsAppliedKey(statsTag, instance), s.poolStatsKey()}
	}
	return &a.fixed
}

// Scratch types of statsOps.
type (
	// workerAgg is one worker's part of a batch.
	workerAgg struct {
		worker   string
		address  string
		name     string
		accepted int64
		last     int64
		best     float64
		diff     float64 // credited difficulty of its latest share (economics)
	}
	// hrKey is one hashrate bucket field: a minute or 10-minute slot n,
	// field kind ('w' worker, 'm' address, 'p' pool) and name.
	hrKey struct {
		slot bool
		n    int64
		kind byte
		name string
	}
	hrBucket struct {
		hrKey
		sum float64
		// Of a worker's bucket ('w'): Σd², n and max d (economics).
		sumD2, maxD float64
		shares      int64 // (not n: that is hrKey's minute or slot)
	}
	// recentGroup is one address's newest shares of a batch (indexes into
	// b.Shares, newest first).
	recentGroup struct {
		address string
		shares  []int
	}
)

// statsCallFor returns the statistics call of shard (statsShards: the
// pool-wide keys) of a's batch, starting it (applied key, batch seq,
// applied TTL) on first use, and the call's hash tag.
func (s *Store) statsCallFor(a *scriptArgs, b *ledger.Batch, shard int) (*scriptArgs, string) {
	tag := statsTag
	if shard < statsShards {
		tag = statsShardTags[shard]
	}
	c := a.calls[shard]
	if c == nil {
		c = getScriptArgs()
		a.calls[shard] = c
		c.addKey(s.statsAppliedKeyCached(a, b.Instance, shard))
		c.seq(b.Seq)
		c.int(int64(appliedTTL / time.Second))
	}
	return c, tag
}

// statsAppliedKeyCached is statsAppliedKey of shard's tag (statsShards: the
// pool's), kept in a across batches of one store and instance.
func (s *Store) statsAppliedKeyCached(a *scriptArgs, instance string, shard int) string {
	if a.appliedPrefix != s.prefix || a.appliedInstance != instance {
		a.appliedPrefix, a.appliedInstance = s.prefix, instance
		clear(a.applied[:])
	}
	if a.applied[shard] == "" {
		tag := statsTag
		if shard < statsShards {
			tag = statsShardTags[shard]
		}
		a.applied[shard] = s.statsAppliedKey(tag, instance)
	}
	return a.applied[shard]
}

// statsOps builds a batch's statistics script calls in a.calls: one per
// statistics shard (the keys of the workers and addresses of that shard)
// and one for the pool-wide keys. It aggregates per worker, per address and
// per minute first, so the scripts run few commands (each costs about a
// microsecond inside Redis).
func (s *Store) statsOps(a *scriptArgs, b *ledger.Batch) {
	ttl := int64(statsTTL / time.Second)
	addHR := func(k hrKey, d float64) {
		i, ok := a.hrIndex[k]
		if !ok {
			i = len(a.hr)
			a.hr = append(a.hr, hrBucket{hrKey: k})
			a.hrIndex[k] = i
		}
		a.hr[i].sum += d
		if k.kind == 'w' {
			b := &a.hr[i]
			b.sumD2 += d * d
			b.shares++
			b.maxD = max(b.maxD, d)
		}
	}
	addHRs := func(t int64, kind byte, name string, d float64) {
		addHR(hrKey{false, t / 60, kind, name}, d)
		addHR(hrKey{true, t / slotSeconds, kind, name}, d)
	}
	var poolAccepted, poolLast int64
	for i := range b.Shares {
		sh := &b.Shares[i].Share
		ms := sh.Time.UnixMilli()
		wi, ok := a.wIndex[sh.Worker]
		if !ok {
			wi = len(a.workers)
			a.workers = append(a.workers, workerAgg{worker: sh.Worker, address: sh.Address, name: sh.WorkerName, best: -1})
			a.wIndex[sh.Worker] = wi
		}
		w := &a.workers[wi]
		w.accepted++
		w.last = max(w.last, ms)
		w.best = max(w.best, sh.HashDifficulty)
		w.diff = sh.Difficulty
		poolAccepted++
		poolLast = max(poolLast, ms)
		t := sh.Time.Unix()
		addHRs(t, 'w', sh.Worker, sh.Difficulty)
		addHRs(t, 'm', sh.Address, sh.Difficulty)
		addHRs(t, 'p', "", sh.Difficulty)
	}
	for i := range a.workers {
		w := &a.workers[i]
		c, tag := s.statsCallFor(a, b, statsShard(w.worker))
		wk := c.keyStart(s.prefix, tag, "worker").keyPart(w.worker).keyDone()
		c.op("hincrby", wk, "accepted")
		c.int(w.accepted)
		// Batches are written in time order; a late spool replay may set
		// an older "last" for a moment, which the next live batch fixes.
		c.op("hset", wk, "last")
		c.int(w.last)
		if w.best >= 0 {
			c.op("hmax", wk, "best")
			c.float(w.best, 'g')
		}
		c.op("hset", wk, workerDiffField)
		c.float(w.diff, 'g')
		c.expireIn(wk, ttl)
		c, tag = s.statsCallFor(a, b, statsShard(w.address))
		mk := c.keyStart(s.prefix, tag, "miner").keyPart(w.address).keyDone()
		c.op("hset", mk, w.name)
		c.int(w.last)
	}
	// Recent shares: the newest few of each address, pushed oldest first so
	// the newest ends at the head, in one LPUSH per address.
	for i := len(b.Shares) - 1; i >= 0; i-- {
		sh := &b.Shares[i].Share
		ri, ok := a.rIndex[sh.Address]
		if !ok {
			ri = len(a.recent)
			if ri < cap(a.recent) {
				a.recent = a.recent[:ri+1] // keeps the old element's shares capacity
				a.recent[ri].address = sh.Address
			} else {
				a.recent = append(a.recent, recentGroup{address: sh.Address})
			}
			a.rIndex[sh.Address] = ri
		}
		if g := &a.recent[ri]; len(g.shares) < recentShares {
			g.shares = append(g.shares, i)
		}
	}
	for gi := range a.recent {
		g := &a.recent[gi]
		c, tag := s.statsCallFor(a, b, statsShard(g.address))
		rk := c.keyStart(s.prefix, tag, "recent").keyPart(g.address).keyDone()
		c.str("lpush")
		c.int(int64(rk))
		c.int(recentShares)
		c.int(int64(len(g.shares)))
		for j := len(g.shares) - 1; j >= 0; j-- {
			sh := &b.Shares[g.shares[j]].Share
			c.buf = strconv.AppendInt(c.buf, sh.Time.UnixMilli(), 10)
			c.buf = append(c.buf, '|')
			c.buf = append(c.buf, sh.WorkerName...)
			c.buf = append(c.buf, '|')
			c.buf = strconv.AppendFloat(c.buf, sh.Difficulty, 'g', -1, 64)
			c.buf = append(c.buf, '|')
			c.buf = strconv.AppendFloat(c.buf, sh.HashDifficulty, 'g', -1, 64)
			c.ends = append(c.ends, len(c.buf))
		}
		c.expireIn(rk, ttl)
		c.expireIn(c.keyStart(s.prefix, tag, "miner").keyPart(g.address).keyDone(), ttl)
	}
	for i := range a.hr {
		bk := &a.hr[i]
		shard := statsShards // 'p': the pool's own tag
		if bk.kind != 'p' {
			shard = statsShard(bk.name)
		}
		c, tag := s.statsCallFor(a, b, shard)
		var hk int
		if bk.slot {
			hk = c.keyStart(s.prefix, tag, "hr10").keyInt(bk.n).keyDone()
		} else {
			hk = c.keyStart(s.prefix, tag, "hr").keyInt(bk.n).keyDone()
		}
		switch bk.kind {
		case 'w': // "Σd|Σd²|n|max d" in one field (economics, docs/redis.md)
			c.str("hw")
			c.int(int64(hk))
			c.str2("w:", bk.name)
			c.buf = strconv.AppendFloat(c.buf, bk.sum, 'g', -1, 64)
			c.buf = append(c.buf, '|')
			c.buf = strconv.AppendFloat(c.buf, bk.sumD2, 'g', -1, 64)
			c.buf = append(c.buf, '|')
			c.buf = strconv.AppendInt(c.buf, bk.shares, 10)
			c.buf = append(c.buf, '|')
			c.buf = strconv.AppendFloat(c.buf, bk.maxD, 'g', -1, 64)
			c.ends = append(c.ends, len(c.buf))
		case 'm':
			c.str("hincrbyfloat")
			c.int(int64(hk))
			c.str2("m:", bk.name)
			c.float(bk.sum, 'f')
		default:
			c.str("hincrbyfloat")
			c.int(int64(hk))
			c.str("pool")
			c.float(bk.sum, 'f')
		}
		if bk.slot {
			c.expireIn(hk, ttl)
		} else {
			c.expireIn(hk, int64(minuteTTL/time.Second))
		}
	}
	if poolAccepted > 0 {
		c, _ := s.statsCallFor(a, b, statsShards)
		pk := c.addKey(s.fixedKeys(a, b.Instance)[7])
		c.op("hincrby", pk, "accepted")
		c.int(poolAccepted)
		c.op("hmax", pk, "last")
		c.int(poolLast)
	}
	for _, r := range b.Rejects {
		field := "rejected"
		if r.Reason == ledger.ReasonStale {
			field = "stale"
		}
		c, tag := s.statsCallFor(a, b, statsShard(r.Worker))
		wk := c.keyStart(s.prefix, tag, "worker").keyPart(r.Worker).keyDone()
		c.op("hincrby", wk, field)
		c.int(r.Count)
		if r.Reason != ledger.ReasonStale && r.Reason != "" {
			c.str("hincrby")
			c.int(int64(wk))
			c.str2("reject:", r.Reason)
			c.int(r.Count)
		}
		c.expireIn(wk, ttl)
		c, _ = s.statsCallFor(a, b, statsShards)
		pk := c.addKey(s.fixedKeys(a, b.Instance)[7])
		c.op("hincrby", pk, field)
		c.int(r.Count)
		if r.Address != "" {
			// List the worker under its address even if it never had a
			// share accepted (an address sending only bad shares must be
			// visible); an accepted share's time replaces this one.
			if name, ok := workerSuffix(r.Worker, r.Address); ok {
				c, tag = s.statsCallFor(a, b, statsShard(r.Address))
				mk := c.keyStart(s.prefix, tag, "miner").keyPart(r.Address).keyDone()
				c.op("hsetnx", mk, name)
				c.int(r.Time.UnixMilli())
				c.expireIn(mk, ttl)
			}
		}
	}
}

// workerSuffix returns the worker part of a full worker name ("address" or
// "address.worker"): the field the miner's worker list keeps it under.
func workerSuffix(worker, address string) (string, bool) {
	if worker == address {
		return "", true
	}
	if rest, ok := strings.CutPrefix(worker, address+"."); ok {
		return rest, true
	}
	return "", false
}

// HighWater implements ledger.Store.
func (s *Store) HighWater(ctx context.Context, instance string) (uint64, error) {
	vals, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, s.acctAppliedKey(instance))
		p.Get(ctx, s.statsAppliedKey(statsTag, instance))
		for _, tag := range statsShardTags {
			p.Get(ctx, s.statsAppliedKey(tag, instance))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("redisstore: read high-water mark: %w", err)
	}
	var hw uint64
	for _, c := range vals {
		v, err := c.(*redis.StringCmd).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("redisstore: read high-water mark: %w", err)
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("redisstore: high-water mark %q: %w", v, err)
		}
		hw = max(hw, n)
	}
	return hw, nil
}

// windowReadScript returns the total, the limit and every entry of the
// PPLNS window, newest first, as "seq|address|units" (seq: the entry's first
// share), in one atomic read. KEYS: 1 cur, 2 total, 3 limit, 4 sealed
// slices. ARGV: 1 slice key prefix.
var windowReadScript = redis.NewScript(`
local out = {redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) or '0'}
local ids = {}
local cur = redis.call('GET', KEYS[1])
if cur then ids[1] = string.match(cur, '^(%d+)|') end
for _, e in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do ids[#ids + 1] = string.match(e, '^(%d+)|') end
for _, id in ipairs(ids) do
  local sk = ARGV[1] .. id
  local addrs = redis.call('LRANGE', sk .. ':order', 0, -1)
  for i = #addrs, 1, -1 do
    local e = redis.call('HGET', sk, addrs[i])
    local f, u = string.match(e, '^([^|]*)|[^|]*|(%d+)$')
    out[#out + 1] = f .. '|' .. addrs[i] .. '|' .. u
  end
end
return out
`)

// Window reads the whole PPLNS window, newest entry first (O(N): for tests,
// tools and checks): each entry is one address's part of one slice, named
// by its first share. Entries, total and limit are read in one script so
// they agree.
func (s *Store) Window(ctx context.Context) (ledger.Window, error) {
	raw, err := windowReadScript.Run(ctx, s.rdb, []string{s.win.cur, s.win.total, s.win.limit, s.win.slices},
		s.win.slice).StringSlice()
	if err != nil {
		return ledger.Window{}, fmt.Errorf("redisstore: read window: %w", err)
	}
	w := ledger.Window{Total: raw[0], Limit: raw[1], Entries: make([]ledger.WindowEntry, 0, len(raw)-2)}
	for _, r := range raw[2:] {
		e, err := ParseWindowEntry(r)
		if err != nil {
			return ledger.Window{}, err
		}
		w.Entries = append(w.Entries, e)
	}
	return w, nil
}

// ParseWindowEntry parses one entry as Window reads it, "seq|address|units".
func ParseWindowEntry(raw string) (ledger.WindowEntry, error) {
	parts := strings.Split(raw, "|")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return ledger.WindowEntry{}, fmt.Errorf("redisstore: bad window entry %q", raw)
	}
	if _, err := ledger.ParseUnits(parts[2]); err != nil {
		return ledger.WindowEntry{}, fmt.Errorf("redisstore: bad window entry %q: %w", raw, err)
	}
	return ledger.WindowEntry{Seq: parts[0], Address: parts[1], Units: parts[2]}, nil
}

// RoundTotals returns Σ units per payout address since the last block and
// their total.
func (s *Store) RoundTotals(ctx context.Context) (map[string]string, string, error) {
	var h *redis.MapStringStringCmd
	var tot *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, s.roundKey())
		tot = p.Get(ctx, s.roundTotalKey())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("redisstore: read round totals: %w", err)
	}
	total := "0"
	if v, err := tot.Result(); err == nil {
		total = v
	}
	return h.Val(), total, nil
}

// WorkerStats reads one worker's statistics; hashrates are computed over
// the minute buckets ending at now.
func (s *Store) WorkerStats(ctx context.Context, worker string, now time.Time) (ledger.WorkerStats, error) {
	var h *redis.MapStringStringCmd
	var hr []*redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, s.workerKey(worker))
		hr = s.hashrateBuckets(ctx, p, shardTag(worker), "w:"+worker, now)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return ledger.WorkerStats{}, fmt.Errorf("redisstore: read worker stats: %w", err)
	}
	m := h.Val()
	var st ledger.WorkerStats
	st.Accepted, _ = strconv.ParseInt(m["accepted"], 10, 64)
	st.Rejected, _ = strconv.ParseInt(m["rejected"], 10, 64)
	st.Stale, _ = strconv.ParseInt(m["stale"], 10, 64)
	if ms, err := strconv.ParseInt(m["last"], 10, 64); err == nil {
		st.LastShare = time.UnixMilli(ms)
	}
	st.BestDifficulty, _ = strconv.ParseFloat(m["best"], 64)
	st.Hashrate10m, st.Hashrate1h, st.Hashrate24h = hashrates(hr, now)
	return st, nil
}

// MinerStats is what the store knows about one payout address.
type MinerStats struct {
	Workers                              map[string]time.Time // worker name → last share
	Hashrate10m, Hashrate1h, Hashrate24h float64
	Recent                               []RecentShare // newest first
}

// RecentShare is one entry of an address's recent-shares list.
type RecentShare struct {
	Time           time.Time
	WorkerName     string
	Difficulty     float64
	HashDifficulty float64
}

// MinerStats reads the statistics of one payout address.
func (s *Store) MinerStats(ctx context.Context, address string, now time.Time) (MinerStats, error) {
	var w *redis.MapStringStringCmd
	var hr []*redis.StringCmd
	var rec *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		w = p.HGetAll(ctx, s.minerKey(address))
		hr = s.hashrateBuckets(ctx, p, shardTag(address), "m:"+address, now)
		rec = p.LRange(ctx, s.recentKey(address), 0, -1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return MinerStats{}, fmt.Errorf("redisstore: read miner stats: %w", err)
	}
	ms := MinerStats{Workers: map[string]time.Time{}}
	for name, v := range w.Val() {
		if t, err := strconv.ParseInt(v, 10, 64); err == nil {
			ms.Workers[name] = time.UnixMilli(t)
		}
	}
	ms.Hashrate10m, ms.Hashrate1h, ms.Hashrate24h = hashrates(hr, now)
	for _, r := range rec.Val() {
		if rs, ok := parseRecentShare(r); ok {
			ms.Recent = append(ms.Recent, rs)
		}
	}
	return ms, nil
}

// parseRecentShare reads one recent-shares entry
// "unixms|worker|difficulty|hash difficulty". The worker name is everything
// between the first separator and the last two: names with '|' are refused
// at authorize now, but entries written before that rule may hold one. An
// entry whose numbers do not parse is skipped.
func parseRecentShare(r string) (RecentShare, bool) {
	msText, rest, ok := strings.Cut(r, "|")
	if !ok {
		return RecentShare{}, false
	}
	i := strings.LastIndexByte(rest, '|')
	if i < 0 {
		return RecentShare{}, false
	}
	j := strings.LastIndexByte(rest[:i], '|')
	if j < 0 {
		return RecentShare{}, false
	}
	t, err1 := strconv.ParseInt(msText, 10, 64)
	d, err2 := strconv.ParseFloat(rest[j+1:i], 64)
	hd, err3 := strconv.ParseFloat(rest[i+1:], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return RecentShare{}, false
	}
	return RecentShare{Time: time.UnixMilli(t), WorkerName: rest[:j], Difficulty: d, HashDifficulty: hd}, true
}

// PoolStats are the pool-wide counters and hashrates.
type PoolStats struct {
	Accepted, Rejected, Stale            int64
	LastShare                            time.Time
	Hashrate10m, Hashrate1h, Hashrate24h float64
}

// PoolStats reads the pool-wide statistics.
func (s *Store) PoolStats(ctx context.Context, now time.Time) (PoolStats, error) {
	var h *redis.MapStringStringCmd
	var hr []*redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, s.poolStatsKey())
		hr = s.hashrateBuckets(ctx, p, statsTag, "pool", now)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return PoolStats{}, fmt.Errorf("redisstore: read pool stats: %w", err)
	}
	m := h.Val()
	var ps PoolStats
	ps.Accepted, _ = strconv.ParseInt(m["accepted"], 10, 64)
	ps.Rejected, _ = strconv.ParseInt(m["rejected"], 10, 64)
	ps.Stale, _ = strconv.ParseInt(m["stale"], 10, 64)
	if ms, err := strconv.ParseInt(m["last"], 10, 64); err == nil {
		ps.LastShare = time.UnixMilli(ms)
	}
	ps.Hashrate10m, ps.Hashrate1h, ps.Hashrate24h = hashrates(hr, now)
	return ps, nil
}

// hashrateBuckets queues the reads of one field of the last 60 minute
// buckets (current minute first) and the last 144 10-minute slots (current
// slot first) under tag (the field's shard, or statsTag for "pool").
func (s *Store) hashrateBuckets(ctx context.Context, p redis.Pipeliner, tag, field string, now time.Time) []*redis.StringCmd {
	minute, slot := now.Unix()/60, now.Unix()/slotSeconds
	out := make([]*redis.StringCmd, 0, 60+daySlots)
	for age := range int64(60) {
		out = append(out, p.HGet(ctx, s.hashrateKey(tag, minute-age), field))
	}
	for age := range int64(daySlots) {
		out = append(out, p.HGet(ctx, s.hashrateSlotKey(tag, slot-age), field))
	}
	return out
}

// hashrates turns the buckets read by hashrateBuckets into hashes per
// second, Σdifficulty × 2^32 / seconds covered: the last 10 and 60 minutes
// (the current, partial minute included) and the last 144 10-minute slots
// (the current slot included), each divided by the time it actually covers
// (see coveredSeconds): a pool or worker that started 5 minutes ago shows
// its rate over those 5 minutes, not a 24th of it over 24 hours.
func hashrates(buckets []*redis.StringCmd, now time.Time) (h10, h60, h1440 float64) {
	var s10, s60, s1440 float64
	oldestMinute, oldestSlot := -1, -1
	for i, c := range buckets {
		d := parseSumD(c.Val()) // a worker's field is packed (economics.go)
		if !(d > 0) {
			continue
		}
		switch {
		case i >= 60:
			s1440 += d
			oldestSlot = i - 60
		case i < 10:
			s10 += d
			s60 += d
			oldestMinute = i
		default:
			s60 += d
			oldestMinute = i
		}
	}
	const two32 = 4294967296.0
	c10, c60, c1440 := coveredSeconds(now, oldestMinute, oldestSlot)
	return s10 * two32 / c10, s60 * two32 / c60, s1440 * two32 / c1440
}
