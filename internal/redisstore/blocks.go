package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

var _ payouts.Ledger = (*Store)(nil)

// Fields of a block record (hash at blockKey).
const (
	fieldHash          = "hash"
	fieldHeight        = "height"
	fieldFinder        = "finder"
	fieldCoinbaseValue = "coinbase_value"
	fieldOutpoint      = "coinbase_outpoint"
	fieldNetDiff       = "network_difficulty"
	fieldFoundAt       = "found_at" // unix milliseconds
	fieldStatus        = "status"
	fieldWindowLimit   = "window_limit"
	fieldWindowUnits   = "window_units"
	fieldWindowShares  = "window_shares"
	fieldContributors  = "contributors"
	fieldConfirmations = "confirmations"
	fieldReward        = "reward"
	fieldFee           = "fee"
	fieldUpdatedAt     = "updated_at" // unix milliseconds
	// The window's boundary and summary (docs/verify.md).
	fieldWindowFirstSeq = "window_first_seq"
	fieldWindowLastSeq  = "window_last_seq"
	fieldFindingSeq     = "finding_seq"
	fieldWindowBoundary = "window_boundary"
	fieldWindowLeaves   = "window_leaves"
	fieldWindowTrunc    = "window_truncated" // 1: entries before the finding share were trimmed before the snapshot
	fieldWindowRoot     = "window_root"
	fieldWindowArchive  = "window_archive" // "pruned" once the archive is deleted
	fieldCommittedIn    = "committed_in"   // the block whose coinbase commits this window
)

// snapshotScript records a found block with its PPLNS snapshot and the
// window's archive, atomically with reading the window and closing the
// round.
//
// KEYS: 1 window, 2 round, 3 block, 4 block shares, 5 blocks index,
// 6 unconfirmed index, 7 block round archive, 8 round total, 9 block round
// total archive, 10 the window limit the share ledger last trimmed to,
// 11 the finding instance's applied accounting high-water mark (any key when
// the finding share is unknown), 12 the block's window archive, 13 the
// window total.
// ARGV: 1 hash, 2 height, 3 window limit in diff units ("0": the share
// ledger's stored limit, and without one the whole window; the payouts
// Recorder never passes 0), 4 now (ms), 5 finding share's instance ("":
// unknown), 6 its counter (decimal), 7.. field/value pairs of the block
// record.
// Returns 1 when recorded, 0 when the block was already recorded; the error
// NOTAPPLIED when the finding share's batch is not applied yet.
//
// The window ends at the finding batch: the newest entry of the finding
// instance whose counter is at or below the finding share's (the share that
// found a block closes its batch, and later batches of the instance have
// higher counters). Entries newer than it are skipped, however many other
// instances or later batches added since. Walking older from there, entries
// are summed up to N (the one crossing N only in part) and written to the
// archive as runs of consecutive entries of one address,
// "first|last|address|units", oldest run at index 0.
var snapshotScript = redis.NewScript(luaUnits + `
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local limstr = ARGV[3]
if limstr == '0' then limstr = redis.call('GET', KEYS[10]) or '0' end
if not string.match(limstr, '^%d+$') then return redis.error_reply('bad window limit ' .. limstr) end
local nh, nl = parse(limstr)
if not nh then return redis.error_reply('window limit too large') end
local limited = nh > 0 or nl > 0
local inst, ctr = ARGV[5], ARGV[6]
local boundary, start = 'late', 0
local function seqOf(e) return string.match(e, '^([^|]*)|') end
if inst ~= '' then
  if not string.match(ctr, '^%d+$') or #ctr > 20 then return redis.error_reply('bad finding counter ' .. ctr) end
  local pctr = string.rep('0', 20 - #ctr) .. ctr
  local hw = redis.call('GET', KEYS[11])
  -- Batch sequences are above the sequences of their shares: a high-water
  -- mark above the finding counter means its batch was applied.
  if not hw or hw <= pctr then
    return redis.error_reply('NOTAPPLIED finding share ' .. inst .. ':' .. ctr .. ' not applied yet')
  end
  local prefix = inst .. ':'
  local idx, found = 0, false
  while not found do
    local batch = redis.call('LRANGE', KEYS[1], idx, idx + 999)
    if #batch == 0 then break end
    for i, e in ipairs(batch) do
      local s = seqOf(e)
      if s and string.sub(s, 1, #prefix) == prefix then
        local c = string.sub(s, #prefix + 1)
        if #c < #ctr or (#c == #ctr and c <= ctr) then start = idx + i - 1; found = true; break end
      end
    end
    idx = idx + 1000
  end
  if found then boundary = 'exact' end
end
local th, tl = 0, 0
local sh, sl, order = {}, {}, {}
local count, idx, done = 0, start, false
local firstSeq, lastSeq = '', ''
-- the run being built, walking from newest to oldest
local ra, rfirst, rlast, rh, rl = nil, '', '', 0, 0
local runs = 0
local pending = {}
local function flush()
  if ra then
    pending[#pending + 1] = rfirst .. '|' .. rlast .. '|' .. ra .. '|' .. fmt(rh, rl)
    runs = runs + 1
    if #pending >= 1000 then redis.call('LPUSH', KEYS[12], unpack(pending)); pending = {} end
  end
end
while not done do
  local batch = redis.call('LRANGE', KEYS[1], idx, idx + 999)
  if #batch == 0 then break end
  for _, e in ipairs(batch) do
    local seq, addr, units = string.match(e, '^([^|]*)|([^|]+)|(%d+)$')
    if not addr then return redis.error_reply('malformed window entry: ' .. e) end
    local uh, ul = parse(units)
    if not uh then return redis.error_reply('window entry too large: ' .. e) end
    if limited then
      local lh, ll = sub(nh, nl, th, tl)
      if lt(lh, ll, uh, ul) then uh, ul = lh, ll; done = true end
    end
    if not sh[addr] then sh[addr] = 0; sl[addr] = 0; order[#order + 1] = addr end
    sh[addr], sl[addr] = add(sh[addr], sl[addr], uh, ul)
    th, tl = add(th, tl, uh, ul)
    if th > HMAX then return redis.error_reply('window total too large') end
    if count == 0 then lastSeq = seq end
    firstSeq = seq
    if ra == addr then
      rfirst = seq
      rh, rl = add(rh, rl, uh, ul)
    else
      flush()
      ra, rfirst, rlast, rh, rl = addr, seq, seq, uh, ul
    end
    count = count + 1
    if done or (limited and not lt(th, tl, nh, nl)) then done = true; break end
  end
  idx = idx + 1000
end
flush()
if #pending > 0 then redis.call('LPUSH', KEYS[12], unpack(pending)) end
-- Fewer than N units before the finding share although the ledger trims
-- (its window holds at least its limit): entries of this window were
-- trimmed before the snapshot ran.
local truncated = 0
if limited and not done then
  local lim, tot = redis.call('GET', KEYS[10]), redis.call('GET', KEYS[13])
  if lim and tot then
    local ah, al = parse(tot)
    local bh, bl = parse(lim)
    if ah and bh and (bh > 0 or bl > 0) and not lt(ah, al, bh, bl) then truncated = 1 end
  end
end
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
local finding = ''
if inst ~= '' then finding = inst .. ':' .. ctr end
redis.call('HSET', KEYS[3], 'status', 'pending', 'window_limit', limstr,
  'window_units', fmt(th, tl), 'window_shares', count, 'contributors', #order,
  'window_first_seq', firstSeq, 'window_last_seq', lastSeq, 'finding_seq', finding,
  'window_boundary', boundary, 'window_leaves', runs, 'window_truncated', truncated,
  'confirmations', 0, 'updated_at', ARGV[4])
for _, a in ipairs(order) do redis.call('HSET', KEYS[4], a, fmt(sh[a], sl[a])) end
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
-- Close the round: the share ledger starts a new one when its hash is gone.
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[7]) end
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('RENAME', KEYS[8], KEYS[9]) end
return 1
`)

// markImmatureScript: KEYS 1 block. ARGV 1 confirmations, 2 now (ms).
// Returns the status before, or false when the block is unknown.
var markImmatureScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if st == 'pending' or st == 'immature' then
  redis.call('HSET', KEYS[1], 'status', 'immature', 'confirmations', ARGV[1], 'updated_at', ARGV[2])
end
return st
`)

// orphanScript: KEYS 1 block, 2 unconfirmed index, 3 commit pending, then
// the block keys of the windows its coinbase committed. ARGV 1 hash, 2 now
// (ms), then the committed hashes. The windows an orphan committed are no
// longer committed on the main chain: they return to the pending set, for
// the pool's next block to commit. Returns 1 when orphaned now, 0 when the
// status was final already, false when the block is unknown.
var orphanScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if st ~= 'pending' and st ~= 'immature' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'orphaned', 'updated_at', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #ARGV do
  local k = KEYS[i + 1]
  if redis.call('HGET', k, 'committed_in') == ARGV[1] then
    redis.call('HDEL', k, 'committed_in')
    redis.call('ZADD', KEYS[3], redis.call('HGET', k, 'height') or 0, ARGV[i])
  end
end
return 1
`)

// creditScript credits a matured block exactly once: the status check and
// every write are in one script.
//
// KEYS: 1 block, 2 balances, 3 fee balance, 4 utxos, 5 unconfirmed index,
// 6 block credits.
// ARGV: 1 hash, 2 now (ms), 3 reward, 4 fee, 5 confirmations, 6 number of
// credits n, then n address/amount pairs, then the number of UTXOs m, then m
// outpoint/value pairs.
// Returns 1 when credited now, 0 when the block was not pending or immature,
// false when it is unknown.
var creditScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if st ~= 'pending' and st ~= 'immature' then return 0 end
local n = tonumber(ARGV[6])
local m = tonumber(ARGV[7 + 2 * n])
-- Validate before writing: a script that fails half way keeps its writes.
local function int(v) return v == false or string.match(v, '^-?%d+$') ~= nil end
for i = 1, n do
  if not int(redis.call('HGET', KEYS[2], ARGV[5 + 2 * i])) then
    return redis.error_reply('balance of ' .. ARGV[5 + 2 * i] .. ' is not an integer')
  end
end
if not int(redis.call('GET', KEYS[3])) then return redis.error_reply('fee balance is not an integer') end
for i = 1, n do
  local addr, amt = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  redis.call('HINCRBY', KEYS[2], addr, amt)
  redis.call('HSET', KEYS[6], addr, amt)
end
if tonumber(ARGV[4]) > 0 then redis.call('INCRBY', KEYS[3], ARGV[4]) end
local base = 7 + 2 * n
for i = 1, m do redis.call('HSET', KEYS[4], ARGV[base + 2 * i - 1], ARGV[base + 2 * i]) end
redis.call('HSET', KEYS[1], 'status', 'credited', 'reward', ARGV[3], 'fee', ARGV[4],
  'confirmations', ARGV[5], 'updated_at', ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
`)

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// SnapshotBlock implements payouts.Ledger.
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
	keys := []string{s.windowKey(), s.roundKey(), s.blockKey(h), s.blockSharesKey(h),
		s.blocksIndexKey(), s.unconfirmedBlocksKey(), s.blockRoundKey(h), s.roundTotalKey(),
		s.blockRoundTotalKey(h), s.windowLimitKey(), appliedKey, s.blockWindowKey(h), s.windowTotalKey()}
	n, err := snapshotScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil && redis.HasErrorPrefix(err, "NOTAPPLIED") {
		return false, fmt.Errorf("redisstore: snapshot block %s: %w: %w", h, payouts.ErrFindingShareNotApplied, err)
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: snapshot block %s: %w", h, err)
	}
	return n == 1, nil
}

// Block implements payouts.Ledger.
func (s *Store) Block(ctx context.Context, hash chainhash.Hash) (payouts.Block, error) {
	m, err := s.rdb.HGetAll(ctx, s.blockKey(hash.String())).Result()
	if err != nil {
		return payouts.Block{}, fmt.Errorf("redisstore: read block %s: %w", hash, err)
	}
	if len(m) == 0 {
		return payouts.Block{}, fmt.Errorf("redisstore: block %s: %w", hash, payouts.ErrBlockNotFound)
	}
	return parseBlock(m)
}

// Blocks returns the most recent recorded blocks, highest first; limit ≤ 0
// returns all of them.
func (s *Store) Blocks(ctx context.Context, limit int) ([]payouts.Block, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit) - 1
	}
	hashes, err := s.rdb.ZRevRange(ctx, s.blocksIndexKey(), 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list blocks: %w", err)
	}
	return s.blocksByHash(ctx, hashes)
}

// UnconfirmedBlocks implements payouts.Ledger.
func (s *Store) UnconfirmedBlocks(ctx context.Context) ([]payouts.Block, error) {
	hashes, err := s.rdb.ZRange(ctx, s.unconfirmedBlocksKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list unconfirmed blocks: %w", err)
	}
	return s.blocksByHash(ctx, hashes)
}

func (s *Store) blocksByHash(ctx context.Context, hashes []string) ([]payouts.Block, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(hashes))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = p.HGetAll(ctx, s.blockKey(h))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: read blocks: %w", err)
	}
	out := make([]payouts.Block, 0, len(hashes))
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue // index entry without a record: nothing to report
		}
		b, err := parseBlock(c.Val())
		if err != nil {
			return nil, fmt.Errorf("redisstore: block %s: %w", hashes[i], err)
		}
		out = append(out, b)
	}
	return out, nil
}

// Contributions implements payouts.Ledger.
func (s *Store) Contributions(ctx context.Context, hash chainhash.Hash) ([]payouts.Contribution, error) {
	h := hash.String()
	m, err := s.rdb.HGetAll(ctx, s.blockSharesKey(h)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read snapshot of %s: %w", h, err)
	}
	out := make([]payouts.Contribution, 0, len(m))
	for addr, v := range m {
		u, ok := new(big.Int).SetString(v, 10)
		if !ok || u.Sign() < 0 {
			return nil, fmt.Errorf("redisstore: snapshot of %s: bad units %q for %s", h, v, addr)
		}
		out = append(out, payouts.Contribution{Address: addr, Units: u})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// BlockCredits returns the satoshis each address was credited from a block.
func (s *Store) BlockCredits(ctx context.Context, hash chainhash.Hash) (map[string]int64, error) {
	return s.intHash(ctx, s.blockCreditsKey(hash.String()))
}

// MarkImmature implements payouts.Ledger.
func (s *Store) MarkImmature(ctx context.Context, hash chainhash.Hash, confirmations int64, now time.Time) (payouts.BlockStatus, error) {
	h := hash.String()
	st, err := markImmatureScript.Run(ctx, s.rdb, []string{s.blockKey(h)}, confirmations, ms(now)).Text()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: mark block %s immature: %w", h, err)
	}
	return payouts.BlockStatus(st), nil
}

// OrphanBlock implements payouts.Ledger.
func (s *Store) OrphanBlock(ctx context.Context, hash chainhash.Hash, now time.Time) (bool, error) {
	h := hash.String()
	committed, err := s.rdb.LRange(ctx, s.blockCommitsKey(h), 0, -1).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: orphan block %s: %w", h, err)
	}
	keys := []string{s.blockKey(h), s.unconfirmedBlocksKey(), s.commitPendingKey()}
	args := []any{h, ms(now)}
	for _, c := range committed {
		keys = append(keys, s.blockKey(c))
		args = append(args, c)
	}
	n, err := orphanScript.Run(ctx, s.rdb, keys, args...).Int()
	if errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: orphan block %s: %w", h, err)
	}
	return n == 1, nil
}

// CreditBlock implements payouts.Ledger.
func (s *Store) CreditBlock(ctx context.Context, c payouts.BlockCredit) (bool, error) {
	h := c.Hash.String()
	a := c.Allocation
	args := make([]any, 0, 8+2*len(a.Credits)+2*len(c.UTXOs))
	args = append(args, h, ms(c.Time), a.Reward, a.Fee, c.Confirmations, len(a.Credits))
	for _, cr := range a.Credits {
		args = append(args, cr.Address, cr.Amount)
	}
	args = append(args, len(c.UTXOs))
	for _, u := range c.UTXOs {
		args = append(args, u.OutPoint.String(), u.Value)
	}
	keys := []string{s.blockKey(h), s.BalancesKey(), s.FeeBalanceKey(), s.UTXOsKey(),
		s.unconfirmedBlocksKey(), s.blockCreditsKey(h)}
	n, err := creditScript.Run(ctx, s.rdb, keys, args...).Int()
	if errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: credit block %s: %w", h, err)
	}
	return n == 1, nil
}

// Balances returns every payout address's unpaid satoshis.
func (s *Store) Balances(ctx context.Context) (map[string]int64, error) {
	return s.intHash(ctx, s.BalancesKey())
}

// Balance returns one address's unpaid satoshis (0 when it has none).
func (s *Store) Balance(ctx context.Context, address string) (int64, error) {
	v, err := s.rdb.HGet(ctx, s.BalancesKey(), address).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: balance of %s: %w", address, err)
	}
	return v, nil
}

// FeeBalance returns the pool fee credited and not yet paid out.
func (s *Store) FeeBalance(ctx context.Context) (int64, error) {
	v, err := s.rdb.Get(ctx, s.FeeBalanceKey()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: fee balance: %w", err)
	}
	return v, nil
}

func (s *Store) intHash(ctx context.Context, key string) (map[string]int64, error) {
	m, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read %s: %w", key, err)
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s field %s: %w", key, k, err)
		}
		out[k] = n
	}
	return out, nil
}

// parseOutpoint parses "txid:vout" (wire.OutPoint.String form).
func parseOutpoint(s string) (wire.OutPoint, error) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != ':' {
			continue
		}
		h, err := chainhash.NewHashFromStr(s[:i])
		if err != nil {
			return wire.OutPoint{}, err
		}
		v, err := strconv.ParseUint(s[i+1:], 10, 32)
		if err != nil {
			return wire.OutPoint{}, err
		}
		return wire.OutPoint{Hash: *h, Index: uint32(v)}, nil
	}
	return wire.OutPoint{}, errors.New("missing ':'")
}

func parseBlock(m map[string]string) (payouts.Block, error) {
	var b payouts.Block
	var err error
	i64 := func(f string) int64 {
		if err != nil || m[f] == "" {
			return 0
		}
		var v int64
		v, err = strconv.ParseInt(m[f], 10, 64)
		if err != nil {
			err = fmt.Errorf("field %s: %w", f, err)
		}
		return v
	}
	bigf := func(f string) *big.Int {
		v, ok := new(big.Int).SetString(m[f], 10)
		if !ok {
			if err == nil && m[f] != "" {
				err = fmt.Errorf("field %s: bad integer %q", f, m[f])
			}
			return new(big.Int)
		}
		return v
	}
	h, herr := chainhash.NewHashFromStr(m[fieldHash])
	if herr != nil {
		return b, fmt.Errorf("field hash: %w", herr)
	}
	b.Hash = *h
	b.Height = i64(fieldHeight)
	b.Finder = m[fieldFinder]
	b.CoinbaseValue = i64(fieldCoinbaseValue)
	if op := m[fieldOutpoint]; op != "" {
		if o, perr := parseOutpoint(op); perr == nil {
			b.CoinbaseOutpoint = o
		}
	}
	b.NetworkDifficulty, _ = strconv.ParseFloat(m[fieldNetDiff], 64)
	b.Time = time.UnixMilli(i64(fieldFoundAt))
	b.Status = payouts.BlockStatus(m[fieldStatus])
	b.WindowLimit = bigf(fieldWindowLimit)
	b.WindowUnits = bigf(fieldWindowUnits)
	b.WindowShares = i64(fieldWindowShares)
	b.Contributors = i64(fieldContributors)
	b.Confirmations = i64(fieldConfirmations)
	b.Reward = i64(fieldReward)
	b.Fee = i64(fieldFee)
	b.UpdatedAt = time.UnixMilli(i64(fieldUpdatedAt))
	b.WindowFirstSeq = m[fieldWindowFirstSeq]
	b.WindowLastSeq = m[fieldWindowLastSeq]
	b.FindingSeq = m[fieldFindingSeq]
	b.WindowBoundary = m[fieldWindowBoundary]
	b.WindowLeaves = i64(fieldWindowLeaves)
	b.WindowTruncated = m[fieldWindowTrunc] == "1"
	if r := m[fieldWindowRoot]; r != "" {
		h, herr := window.ParseHash(r)
		if herr != nil && err == nil {
			err = fmt.Errorf("field %s: %w", fieldWindowRoot, herr)
		}
		b.WindowRoot = &h
	}
	b.ArchivePruned = m[fieldWindowArchive] == "pruned"
	b.CommittedIn = m[fieldCommittedIn]
	return b, err
}
