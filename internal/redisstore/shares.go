package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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
// KEYS: 1 window cur, 2 window total, 3 window limit, 4 round total, 5
// sealed slices, 6 window pins, 7 window gc, 8 applied (last: the
// replicated write fences on it).
// ARGV: 1 batch seq (20 digits), 2 window limit units ("0": keep the stored
// one), 3 applied TTL seconds, 4 slice key prefix, 5 the sequence of the
// batch's block share ("": none), 6 Σ units of the batch, 7 the expected
// open slice ("": no expectation, see below, "-": none and no state wanted
// in the reply; then the addresses follow from 8), else 8 the expected window total, 9 round total and 10 stored limit
// ("": none), 11 the open slice's id, 12-14 the new open slice, window total
// and round total, 15 the limit to store ("": keep) and 16 the sealed
// slice to push ("": no seal), and the addresses from 17. Per address (in
// the order of its first share in the batch): address, the sequences of its
// first and last share, Σ units (summed in Go, acctOps: the script adds each
// address once); with an expectation, after all of them, per address its
// expected entry ("": none) and its new entry.
// Returns {added, 0, 1} when it wrote the expected values, {added, popped}
// for ARGV[7] "-", else {added, popped, 0, open slice, window total, round total, stored limit ("":
// none), the id of the slice the entries went to, the addresses' entries
// (of a batch of up to 2,000 addresses)}, or {0, 0} if the batch was
// applied before; added is the number of entries added to the open slice,
// popped the slices dropped.
//
// Expectations (acctCache): parsing and formatting the decimal units in Lua
// cost about as much as the five commands of a paced pool's one-share call
// (a third of its time in Redis: BenchmarkAccountingCall), so lode keeps
// what the script last wrote, computes the new values as the script would
// (acctCache.plan) and passes both. If every value the script reads (the
// open slice, the totals, the stored limit and the batch's entries) is
// exactly the expected one, it writes lode's values with the same commands
// in the same order, which are what its own computation would write; on
// any difference (another frontend wrote, a block renamed the round total,
// a retention ran) it computes as without expectations. lode expects only
// what it computes exactly as the script does (no trimming, canonical
// numbers below 10^24), so what is stored never depends on the way taken
// (TestAcctExpectationsMatchScriptBefore).
//
// The entries of the batch's addresses are read in one HMGET and written in
// one HSET (the addresses new to the slice in one RPUSH), in chunks of
// 2,000 addresses: a field inside one command costs Redis a fraction of a
// command of its own, and the batch's addresses are most of what a full
// batch costs (bench/README.md, issue 14). The window's state is read in one
// MGET and written in one MSET (the limit only when it changed).
var acctScript = redis.NewScript(luaUnits + `
-- One MGET for the applied mark, window total, round total, open slice and
-- limit; one MSET for what changes of them (a paced pool pays these per
-- share).
local st = redis.call('MGET', KEYS[8], KEYS[2], KEYS[4], KEYS[1], KEYS[3])
local hwm = st[1]
if hwm and hwm >= ARGV[1] then return {0, 0} end
local base, n = 8, (#ARGV - 7) / 4
local order = {}
if ARGV[7] ~= '' and ARGV[7] ~= '-' then
  base, n = 17, (#ARGV - 16) / 6
  for j = 1, n do order[j] = ARGV[base + 4 * j - 4] end
  local x = ARGV[10]
  if st[4] == ARGV[7] and st[2] == ARGV[8] and st[3] == ARGV[9] and
      ((x == '' and not st[5]) or (x ~= '' and st[5] == x)) then
    local sk = ARGV[4] .. ARGV[11]
    local h = base + 4 * n - 2 -- ARGV[h + 2j] expected, ARGV[h + 2j + 1] new entry of order[j]
    local es = redis.call('HMGET', sk, unpack(order))
    local ok = true
    for j = 1, n do
      local want = ARGV[h + 2 * j]
      if want == '' then ok = not es[j] else ok = es[j] == want end
      if not ok then break end
    end
    if ok then
      local set, new = {}, {}
      for j = 1, n do
        set[2 * j - 1], set[2 * j] = order[j], ARGV[h + 2 * j + 1]
        if not es[j] then new[#new + 1] = order[j] end
      end
      if #new > 0 then redis.call('RPUSH', sk .. ':order', unpack(new)) end
      redis.call('HSET', sk, unpack(set))
      if ARGV[16] ~= '' then redis.call('LPUSH', KEYS[5], ARGV[16]) end
      if ARGV[15] ~= '' then
        redis.call('MSET', KEYS[1], ARGV[12], KEYS[2], ARGV[13], KEYS[4], ARGV[14], KEYS[3], ARGV[15])
      else
        redis.call('MSET', KEYS[1], ARGV[12], KEYS[2], ARGV[13], KEYS[4], ARGV[14])
      end
      redis.call('SET', KEYS[8], ARGV[1], 'EX', ARGV[3])
      return {#new, 0, 1}
    end
  end
else
  for j = 1, n do order[j] = ARGV[base + 4 * j - 4] end
end
local th, tl = parse(st[2])
-- The block-found snapshot renames the round total away; a missing total
-- means a new round, which starts from zero.
local rh, rl = parse(st[3])
local id, ch, cl, oldest = 1, 0, 0, ''
local cur = st[4]
if cur then
  local i, u, o = string.match(cur, '^(%d+)|(%d+)|(%d*)$')
  id = tonumber(i)
  ch, cl = parse(u)
  oldest = o
end
local wid = id
local sk = ARGV[4] .. id
local uh, ul = parse(ARGV[6])
th, tl = add(th, tl, uh, ul)
rh, rl = add(rh, rl, uh, ul)
ch, cl = add(ch, cl, uh, ul)
local added = 0
local out = {}
for c = 1, #order, 2000 do
  local last = math.min(c + 1999, #order)
  local es = redis.call('HMGET', sk, unpack(order, c, last))
  local set, new = {}, {}
  for j = c, last do
    local a = base - 4 + 4 * j -- ARGV[a] is order[j]
    local e = es[j - c + 1]
    set[#set + 1] = ARGV[a]
    if e then
      local f, u = string.match(e, '^([^|]*)|[^|]*|(%d+)$')
      local eh, el = parse(u)
      local ph, pl = parse(ARGV[a + 3])
      set[#set + 1] = f .. '|' .. ARGV[a + 2] .. '|' .. fmt(add(eh, el, ph, pl))
    else
      new[#new + 1] = ARGV[a]
      set[#set + 1] = ARGV[a + 1] .. '|' .. ARGV[a + 2] .. '|' .. ARGV[a + 3]
    end
    out[j] = set[#set]
  end
  if #new > 0 then
    redis.call('RPUSH', sk .. ':order', unpack(new))
    added = added + #new
  end
  redis.call('HSET', sk, unpack(set))
end
local limit, newLimit = ARGV[2], false
if limit == '0' then
  limit = st[5]
elseif st[5] ~= limit then
  newLimit = true
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
  redis.call('LPUSH', KEYS[5], id .. '|' .. u .. '|' .. ARGV[5])
  if oldest == '' then oldest = u end
  id, ch, cl = id + 1, 0, 0
end
local popped = 0
if limited and oldest ~= '' then
  local oh, ol = parse(oldest)
  while true do
    local xh, xl = sub(th, tl, oh, ol)
    if not ge(xh, xl, nh, nl) then break end
    local e = redis.call('RPOP', KEYS[5])
    local oid = tonumber(string.match(e, '^(%d+)|'))
    th, tl = xh, xl
    popped = popped + 1
    local pin = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
    if #pin == 0 or tonumber(pin[2]) > oid then
      redis.call('UNLINK', ARGV[4] .. oid, ARGV[4] .. oid .. ':order')
      if tonumber(redis.call('GET', KEYS[7]) or '1') == oid then redis.call('SET', KEYS[7], oid + 1) end
    end
    local nxt = redis.call('LINDEX', KEYS[5], -1)
    if not nxt then oldest = ''; break end
    oldest = string.match(nxt, '^%d+|(%d+)|')
    oh, ol = parse(oldest)
  end
end
local curv = id .. '|' .. fmt(ch, cl) .. '|' .. oldest
local tv, rv = fmt(th, tl), fmt(rh, rl)
if newLimit then
  redis.call('MSET', KEYS[1], curv, KEYS[2], tv, KEYS[4], rv, KEYS[3], limit)
else
  redis.call('MSET', KEYS[1], curv, KEYS[2], tv, KEYS[4], rv)
end
redis.call('SET', KEYS[8], ARGV[1], 'EX', ARGV[3])
if ARGV[7] == '-' then return {added, popped} end
local res = {added, popped, 0, curv, tv, rv, limit or '', tostring(wid)}
if #order <= 2000 then
  for j = 1, #order do res[8 + j] = out[j] end
end
return res
`)

// statsScript applies a list of statistics operations once per batch
// sequence. KEYS[1] is the applied key, the others are the keys the
// operations name by index. ARGV: batch seq, applied TTL seconds, then the
// operations, each its name and key index followed by:
//   - "hset": a count n and n field/value pairs, written in one HSET.
//   - "hw", "hf": a count n and n groups of field, increment, expected and
//     new value: the fields are read in one HMGET and written in one HSET.
//     hw is a worker's packed bucket field ("Σd|Σd²|n|max d", presence.go
//     appends "|connected s"), hf a float (an address's or the pool's Σd).
//     A field whose value (hw: the part before the connected seconds) is
//     the expected one, as this Store wrote it last (statsCache), gets the
//     new value (hw: followed by the connected seconds); a field not there
//     yet (hw: or with connected seconds only) the increment; any other
//     (another frontend or a replay wrote it since, or expected is "")
//     gets the sum of its value and the increment, parsed and formatted
//     here. So a worker's bucket fields usually cost no number parsing or
//     formatting in Redis, and a wrong expectation only costs the sum.
//   - "hincrby", "hmax", "hsetnx", "expire": a field and a value.
//   - "lpush": a cap c and a count n, then n elements pushed in one LPUSH;
//     the list is trimmed to c.
//
// A field costs Redis far less inside a multi-field command than as a call
// of its own (bench/README.md, issue 14), so statsOps groups them per key.
var statsScript = redis.NewScript(luaPackedW + `
local hwm = redis.call('GET', KEYS[1])
if hwm and hwm >= ARGV[1] then return 0 end
local i = 3
while i <= #ARGV do
  local op, k, f, v = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  if op == 'hset' then
    local n = tonumber(f)
    redis.call('HSET', k, unpack(ARGV, i + 3, i + 2 + 2 * n))
    i = i + 3 + 2 * n
  elseif op == 'hw' or op == 'hf' then
    local n = tonumber(f)
    local fs = {}
    for j = 1, n do fs[j] = ARGV[i + 4 * j - 1] end
    local cur = redis.call('HMGET', k, unpack(fs))
    local out = {}
    for j = 1, n do
      local c, x, e = cur[j], ARGV[i + 4 * j], ARGV[i + 4 * j + 1]
      if c then
        local rest
        if e ~= '' and string.sub(c, 1, #e) == e then
          rest = string.sub(c, #e + 1)
        elseif op == 'hw' and string.sub(c, 1, 8) == '0|0|0|0|' then
          e, rest = '', string.sub(c, 8)
        end
        if rest == '' or (op == 'hw' and rest and string.byte(rest, 1) == 124) then
          if e ~= '' then x = ARGV[i + 4 * j + 2] end
          x = x .. rest
        elseif op == 'hw' then
          -- Add the sums and counts, keep the larger max and the
          -- connected time.
          local d, q, s, m = string.match(x, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
          local cd, cq, cn, cm, cc = unpackw(c)
          x = packw(cd + tonumber(d), cq + tonumber(q), cn + tonumber(s), math.max(cm, tonumber(m)), cc)
        else
          x = string.format('%.17g', (tonumber(c) or 0) + tonumber(x))
        end
      end
      out[2 * j - 1], out[2 * j] = fs[j], x
    end
    redis.call('HSET', k, unpack(out))
    i = i + 3 + 4 * n
  elseif op == 'lpush' then
    local n = tonumber(v)
    redis.call('LPUSH', k, unpack(ARGV, i + 4, i + 3 + n))
    redis.call('LTRIM', k, 0, tonumber(f) - 1)
    i = i + 4 + n
  else
    i = i + 4
    if op == 'hincrby' then
      redis.call('HINCRBY', k, f, v)
    elseif op == 'hmax' then
      local c = tonumber(redis.call('HGET', k, f) or '-1')
      if tonumber(v) > c then redis.call('HSET', k, f, v) end
    elseif op == 'hsetnx' then
      redis.call('HSETNX', k, f, v)
    elseif op == 'expire' then
      redis.call('EXPIRE', k, v)
    else
      return redis.error_reply('unknown stats op ' .. op)
    end
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
	var acct *scriptArgs
	var acctRes *redis.Cmd // the accounting call's reply
	var stats []statsCall
	var statsArgs *scriptArgs
	if len(b.Shares) > 0 && b.Kind != ledger.BatchStats {
		acct = getScriptArgs()
		defer acct.release()
		if err := s.acctOps(acct, b, windowLimit); err != nil {
			return err
		}
		acctCmd, acctKeys, acctArgs = acct.command(acctScript.Hash())
	}
	if b.Kind != ledger.BatchAccounting {
		a := getScriptArgs()
		defer a.release()
		s.statsOps(a, b)
		statsArgs = a
		for _, c := range a.calls {
			if c != nil && len(c.ends) > 2 { // more than the batch seq and TTL: something to write
				cmd, _, _ := c.command(statsScript.Hash())
				stats = append(stats, statsCall{cmd: cmd})
			}
		}
	}
	run := func() (err error) {
		if s.minReplicas > 0 { // acknowledged means replicated (replicated.go)
			acctRes, err = s.applyReplicated(ctx, acctKeys, acctArgs, stats)
			return err
		}
		switch {
		case acctCmd != nil && len(stats) == 0: // a group commit: one call, no pipeline
			acctRes = s.rdb.Do(ctx, acctCmd...)
			return acctRes.Err()
		case acctCmd == nil && len(stats) == 1:
			stats[0].res = s.rdb.Do(ctx, stats[0].cmd...)
			return stats[0].res.Err()
		case acctCmd == nil && len(stats) == 0:
			return nil
		}
		acctRes, err = s.pipeline(ctx, s.rdb, acctCmd, stats)
		return err
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
	if acct != nil {
		s.acct.commit(acct, acctRes, err)
	}
	if err != nil {
		return fmt.Errorf("redisstore: apply share batch: %w", err)
	}
	if statsArgs != nil {
		// What the calls wrote is known only if each of them applied (a
		// call skipped by its high-water mark wrote nothing now).
		applied := true
		for _, sc := range stats {
			if n, err := sc.res.Int64(); err != nil || n != 1 {
				applied = false
			}
		}
		s.cache.commit(statsArgs, applied)
	}
	return nil
}

// statsCall is one statistics script call of a batch: the EVALSHA command
// for the keys of one hash tag, and its reply once sent.
type statsCall struct {
	cmd []any
	res *redis.Cmd
}

// pipeline sends acctCmd (if any) and the statistics calls through c in one
// pipeline (on a cluster go-redis splits it per master) and returns the
// accounting call (nil without acctCmd) and the first error.
func (s *Store) pipeline(ctx context.Context, c redis.UniversalClient, acctCmd []any, stats []statsCall) (*redis.Cmd, error) {
	var acct *redis.Cmd
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if acctCmd != nil {
			acct = p.Do(ctx, acctCmd...)
		}
		for i := range stats {
			stats[i].res = p.Do(ctx, stats[i].cmd...)
		}
		return nil
	})
	if err != nil {
		return acct, err
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return acct, c.Err()
		}
	}
	return acct, nil
}

// acctOps adds a batch's accounting script keys and arguments to a.
func (s *Store) acctOps(a *scriptArgs, b *ledger.Batch, windowLimit string) error {
	fixed := s.fixedKeys(a, b.Instance)
	a.addKey(s.win.cur)
	a.addKey(s.win.total)
	a.addKey(s.win.limit)
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
	block := ""
	for i := len(b.Shares) - 1; i >= 0; i-- {
		if b.Shares[i].Share.Block {
			block = seqString(b.Instance, b.Shares[i].Seq)
			break
		}
	}
	a.str(block)
	// Σ units of the batch and per address (in the order of the address's
	// first share): the script adds each address once, not each share.
	var total units
	for i := range b.Shares {
		e := &b.Shares[i]
		u, err := parseUnits(e.Units)
		if err != nil {
			return fmt.Errorf("redisstore: share %s:%d: %w", b.Instance, e.Seq, err)
		}
		total.add(u)
		ai, ok := a.aIndex[e.Share.Address]
		if !ok {
			ai = len(a.accts)
			a.accts = append(a.accts, addrUnits{address: e.Share.Address, first: e.Seq})
			a.aIndex[e.Share.Address] = ai
		}
		p := &a.accts[ai]
		p.last = e.Seq
		p.units.add(u)
	}
	a.buf = total.append(a.buf)
	a.ends = append(a.ends, len(a.buf))
	// What the script is expected to read and write (acctCache), if known.
	a.acctPlan.reset()
	s.acct.plan(&a.acctPlan, a.accts, total, windowLimit, block)
	a.appendPlan(&a.acctPlan)
	for i := range a.accts {
		p := &a.accts[i]
		a.str(p.address)
		for _, seq := range [2]uint64{p.first, p.last} {
			a.buf = appendSeq(a.buf, b.Instance, seq)
			a.ends = append(a.ends, len(a.buf))
		}
		a.buf = p.units.append(a.buf)
		a.ends = append(a.ends, len(a.buf))
	}
	a.appendPlanEntries(&a.acctPlan, b.Instance)
	return nil
}

// addrUnits is one address's part of a batch: the sequences of its first
// and last share and Σ units.
type addrUnits struct {
	address     string
	first, last uint64
	units       units
}

// units is a sum of diff units, hi·10^18 + lo, exact far beyond what the
// scripts take (luaUnits: 27 digits).
type units struct{ hi, lo uint64 }

const unitsBase = 1_000_000_000_000_000_000

// parseUnits parses a share's diff units (ledger.DiffUnits: a base-10
// integer); the scripts refuse values past 27 digits, and so does this.
func parseUnits(s string) (units, error) {
	if s == "" || len(s) > 27 {
		return units{}, fmt.Errorf("bad units %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return units{}, fmt.Errorf("bad units %q", s)
		}
	}
	if len(s) <= 18 {
		lo, _ := strconv.ParseUint(s, 10, 64)
		return units{lo: lo}, nil
	}
	hi, _ := strconv.ParseUint(s[:len(s)-18], 10, 64)
	lo, _ := strconv.ParseUint(s[len(s)-18:], 10, 64)
	return units{hi, lo}, nil
}

func (u *units) add(v units) {
	u.hi += v.hi
	u.lo += v.lo
	if u.lo >= unitsBase {
		u.lo -= unitsBase
		u.hi++
	}
}

// append appends u in base 10.
func (u units) append(dst []byte) []byte {
	if u.hi == 0 {
		return strconv.AppendUint(dst, u.lo, 10)
	}
	dst = strconv.AppendUint(dst, u.hi, 10)
	var d [18]byte
	lo := u.lo
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + lo%10)
		lo /= 10
	}
	return append(dst, d[:]...)
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
	// b.Shares, newest first), or its workers (indexes into workers).
	recentGroup struct {
		address string
		shares  []int
	}
	// hrGroupKey is one bucket hash of one shard (statsShards: the pool's)
	// and whether its fields are workers' ('w') or sums (address, pool).
	hrGroupKey struct {
		shard int
		slot  bool
		n     int64
		w     bool
	}
	// hrGroup is the fields of a batch in one bucket hash (indexes into hr).
	hrGroup struct {
		hrGroupKey
		idx []int
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

// maxFieldsPerOp bounds the fields of one multi-field statistics
// operation (Lua's unpack takes at most about 8,000 values).
const maxFieldsPerOp = 1000

// statsOps builds a batch's statistics script calls in a.calls: one per
// statistics shard (the keys of the workers and addresses of that shard)
// and one for the pool-wide keys. It aggregates per worker, per address and
// per minute first, and writes the fields of one key in one multi-field
// operation (a worker's last share and difficulty, an address's worker
// list, a bucket hash's worker and address fields), so a worker costs a
// flush two calls and its bucket fields, not one call per field. What the
// Store wrote recently is left out (statsCache): an EXPIRE refreshed less
// than ttl/25 ago, a best difficulty not above the one written.
func (s *Store) statsOps(a *scriptArgs, b *ledger.Batch) {
	ttl := int64(statsTTL / time.Second)
	now := time.Now().Unix()
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
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
		// The worker's last share is its field in the address's worker
		// list (below), not written here too: a second command per worker
		// and flush was a fifth of what statistics cost Redis
		// (bench/README.md, issue 14, fourth round). Its difficulty changes
		// only with vardiff: written when it differs from what this Store
		// wrote, or that is diffRefresh old (another frontend may have
		// written its own since: a worker that moved back).
		known, ok := s.cache.workers[w.worker]
		wroteDiff := !ok || !known.hasDiff || known.diff != w.diff || now-known.diffAt >= diffRefresh
		if wroteDiff {
			c.multi("hset", wk, 1)
			c.str(workerDiffField)
			c.float(w.diff, 'g')
		}
		// Best only grows in Redis: nothing to do when this Store already
		// wrote as much.
		if w.best >= 0 && (!ok || w.best > known.best) {
			c.op("hmax", wk, "best")
			c.float(w.best, 'g')
		}
		a.bests = append(a.bests, workerBest{w.worker, w.best, w.diff, wroteDiff})
		s.expire(a, c, wk, ttl, now)
		mi, ok := a.mIndex[w.address]
		if !ok {
			mi = len(a.miners)
			if mi < cap(a.miners) {
				a.miners = a.miners[:mi+1]
				a.miners[mi].address = w.address
			} else {
				a.miners = append(a.miners, recentGroup{address: w.address})
			}
			a.mIndex[w.address] = mi
		}
		a.miners[mi].shares = append(a.miners[mi].shares, i)
	}
	// An address's worker list: worker name → last share, one HSET.
	for gi := range a.miners {
		g := &a.miners[gi]
		c, tag := s.statsCallFor(a, b, statsShard(g.address))
		mk := c.keyStart(s.prefix, tag, "miner").keyPart(g.address).keyDone()
		for start := 0; start < len(g.shares); start += maxFieldsPerOp {
			part := g.shares[start:min(len(g.shares), start+maxFieldsPerOp)]
			c.multi("hset", mk, len(part))
			for _, wi := range part {
				c.str(a.workers[wi].name)
				c.int(a.workers[wi].last)
			}
		}
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
		s.expire(a, c, rk, ttl, now)
		s.expire(a, c, c.keyStart(s.prefix, tag, "miner").keyPart(g.address).keyDone(), ttl, now)
	}
	// Hashrate buckets: the fields of one bucket hash in one operation.
	for i := range a.hr {
		bk := &a.hr[i]
		k := hrGroupKey{shard: statsShards, slot: bk.slot, n: bk.n, w: bk.kind == 'w'} // 'p': the pool's own tag
		if bk.kind != 'p' {
			k.shard = statsShard(bk.name)
		}
		gi, ok := a.hgIndex[k]
		if !ok {
			gi = len(a.hgroups)
			if gi < cap(a.hgroups) {
				a.hgroups = a.hgroups[:gi+1]
				a.hgroups[gi].hrGroupKey = k
			} else {
				a.hgroups = append(a.hgroups, hrGroup{hrGroupKey: k})
			}
			a.hgIndex[k] = gi
		}
		a.hgroups[gi].idx = append(a.hgroups[gi].idx, i)
	}
	for gi := range a.hgroups {
		g := &a.hgroups[gi]
		c, tag := s.statsCallFor(a, b, g.shard)
		var hk int
		if g.slot {
			hk = c.keyStart(s.prefix, tag, "hr10").keyInt(g.n).keyDone()
		} else {
			hk = c.keyStart(s.prefix, tag, "hr").keyInt(g.n).keyDone()
		}
		op := "hf"
		if g.w {
			op = "hw"
		}
		for start := 0; start < len(g.idx); start += maxFieldsPerOp {
			part := g.idx[start:min(len(g.idx), start+maxFieldsPerOp)]
			c.multi(op, hk, len(part))
			for _, i := range part {
				bk := &a.hr[i]
				switch bk.kind {
				case 'w':
					c.str2("w:", bk.name)
				case 'm':
					c.str2("m:", bk.name)
				default:
					c.str("pool")
				}
				inc := hrTotals{bk.sum, bk.sumD2, bk.maxD, bk.shares}
				c.hrValue(bk.kind, inc)
				total := inc
				if known, ok := s.cache.hr[bk.hrKey]; ok {
					c.hrValue(bk.kind, known.hrTotals)
					total = hrTotals{known.sum + inc.sum, known.sumD2 + inc.sumD2, max(known.maxD, inc.maxD), known.shares + inc.shares}
					c.hrValue(bk.kind, total)
				} else {
					c.str("")
					c.str("")
				}
				a.hrw = append(a.hrw, hrWritten{bk.hrKey, total, now})
			}
		}
		if g.slot {
			s.expire(a, c, hk, ttl, now)
		} else {
			s.expire(a, c, hk, int64(minuteTTL/time.Second), now)
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
		s.expire(a, c, wk, ttl, now)
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
				s.expire(a, c, mk, ttl, now)
			}
		}
	}
}

// hrTotals is what a bucket field holds of a worker's shares (Σd, Σd², max d,
// n) or, for an address or the pool, Σd.
type hrTotals struct {
	sum, sumD2, maxD float64
	shares           int64
}

// hrValue appends one bucket field value: a worker's (kind 'w') packed
// "Σd|Σd²|n|max d" (economics, docs/redis.md), else Σd.
func (a *scriptArgs) hrValue(kind byte, t hrTotals) {
	a.buf = strconv.AppendFloat(a.buf, t.sum, 'g', -1, 64)
	if kind == 'w' {
		a.buf = append(a.buf, '|')
		a.buf = strconv.AppendFloat(a.buf, t.sumD2, 'g', -1, 64)
		a.buf = append(a.buf, '|')
		a.buf = strconv.AppendInt(a.buf, t.shares, 10)
		a.buf = append(a.buf, '|')
		a.buf = strconv.AppendFloat(a.buf, t.maxD, 'g', -1, 64)
	}
	a.ends = append(a.ends, len(a.buf))
}

// hrWritten is a bucket field's value as a flush writes it, if the field
// held what this Store expected (or nothing), and when.
type hrWritten struct {
	hrKey
	hrTotals
	at int64
}

// statsCache is what a Store wrote to the statistics keys lately, so that
// later flushes leave out writes that would change nothing: the EXPIRE of a
// key whose TTL it set less than ttl/25 ago (a key then lives at least 24
// of its 25 hours past its last write; 2 h minute buckets at least 1 h 55
// min), the best difficulty of a worker whose best it wrote as high, and
// the difficulty of a worker whose difficulty it wrote as is;
// and the bucket fields' values it wrote (the "expected" of the hw and hf
// operations, statsScript: only a hint, the script compares it with what
// Redis holds).
// It is filled only after Redis acknowledged the write (commit), is shared
// by the Store's concurrent ApplyBatch calls (the flusher and a spool
// replay) and forgets what is older than an hour.
type statsCache struct {
	mu      sync.Mutex
	ttl     map[string]int64         // key → unix s of its last EXPIRE
	workers map[string]workerWritten // worker → its best and difficulty written
	hr      map[hrKey]hrWritten      // bucket field → its value as last written
	pruned  int64                    // unix s of the last prune
}

// workerWritten is a worker's best difficulty and difficulty as this
// Store wrote them, and when it was last part of a flush.
type workerWritten struct {
	best, diff float64
	hasDiff    bool
	diffAt     int64 // unix s when diff was written
	at         int64
}

// diffRefresh is how often (s) a worker's unchanged difficulty is written
// again.
const diffRefresh = 60

// workerBest is one worker's best difficulty (-1: none) and latest
// difficulty in a batch, and whether the batch writes that difficulty.
type workerBest struct {
	worker     string
	best, diff float64
	wroteDiff  bool
}

// expire queues an EXPIRE of c's KEYS[key] in seconds unless this call
// already has one or the Store refreshed the key's TTL less than ttl/25
// ago; a queued one is remembered in a.setTTL for commit.
func (s *Store) expire(a, c *scriptArgs, key int, ttl, now int64) {
	if c.expired[key-1] {
		return
	}
	k := c.keys[key-1]
	if t, ok := s.cache.ttl[k]; ok && now-t < ttl/25 {
		c.expired[key-1] = true
		return
	}
	c.expireIn(key, ttl)
	a.setTTL = append(a.setTTL, k)
}

// commit records what a's statistics calls wrote, once Redis acknowledged
// them; only the TTLs unless every call applied (rather than found its
// batch applied before: what it wrote then is not known).
func (c *statsCache) commit(a *scriptArgs, applied bool) {
	now := time.Now().Unix()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl == nil {
		c.ttl, c.workers, c.hr = map[string]int64{}, map[string]workerWritten{}, map[hrKey]hrWritten{}
	}
	for _, k := range a.setTTL {
		c.ttl[k] = now
	}
	if applied {
		for _, wb := range a.bests {
			known := c.workers[wb.worker]
			known.best, known.at = max(known.best, wb.best), now
			if wb.wroteDiff {
				known.diff, known.hasDiff, known.diffAt = wb.diff, true, now
			}
			c.workers[wb.worker] = known
		}
		for _, w := range a.hrw {
			c.hr[w.hrKey] = w
		}
	}
	if now-c.pruned >= 600 {
		c.pruned = now
		for k, t := range c.ttl {
			if now-t >= 3600 {
				delete(c.ttl, k)
			}
		}
		for w, b := range c.workers {
			if now-b.at >= 3600 {
				delete(c.workers, w)
			}
		}
		for k, w := range c.hr { // a 10-minute slot is written for 10 minutes
			if now-w.at >= 1200 {
				delete(c.hr, k)
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

// RoundTotal returns Σ units of the shares since the last block ("0" before
// the first share of a round). The shares per address are in the window
// (Window); the round is not kept per address (issue 14: nothing read it,
// and it was half of what a full batch cost Redis).
func (s *Store) RoundTotal(ctx context.Context) (string, error) {
	total, err := s.rdb.Get(ctx, s.roundTotalKey()).Result()
	if errors.Is(err, redis.Nil) {
		return "0", nil
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: read round total: %w", err)
	}
	return total, nil
}

// WorkerStats reads one worker's statistics; hashrates are computed over
// the minute buckets ending at now.
func (s *Store) WorkerStats(ctx context.Context, worker string, now time.Time) (ledger.WorkerStats, error) {
	var h *redis.MapStringStringCmd
	var listed *redis.StringCmd
	var hr []*redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, s.workerKey(worker))
		listed = s.listedLast(ctx, p, worker)
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
	st.LastShare = lastShare(st.Accepted, m["last"], listed)
	st.BestDifficulty, _ = strconv.ParseFloat(m["best"], 64)
	st.Hashrate10m, st.Hashrate1h, st.Hashrate24h = hashrates(hr, now)
	return st, nil
}

// listedLast queues the read of a worker's field in its address's worker
// list (P:T:miner:<address>): the time of its last accepted share, or, for
// a worker with rejects only, of its latest reject group. nil when the
// username names no address.
func (s *Store) listedLast(ctx context.Context, p redis.Pipeliner, worker string) *redis.StringCmd {
	// The username is "address" or "address.worker" (shares.Share).
	addr, _, _ := strings.Cut(worker, ".")
	name, ok := workerSuffix(worker, addr)
	if !ok {
		return nil
	}
	return p.HGet(ctx, s.minerKey(addr), name)
}

// lastShare is a worker's last accepted share: its field in its address's
// worker list (listedLast) if it ever had a share accepted, or the
// worker hash's "last" (oldLast), which versions before issue 14's fourth
// round wrote with every flush, if that is later.
func lastShare(accepted int64, oldLast string, listed *redis.StringCmd) time.Time {
	if accepted <= 0 {
		return time.Time{} // rejects only: the list holds a reject's time
	}
	ms, err := strconv.ParseInt(oldLast, 10, 64)
	if err != nil {
		ms = 0
	}
	if listed != nil {
		if l, err := strconv.ParseInt(listed.Val(), 10, 64); err == nil {
			ms = max(ms, l)
		}
	}
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
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
