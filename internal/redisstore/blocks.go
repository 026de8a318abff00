package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/blocks"
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

// The block record's status field holds the block's state (blocks.State).
// Every script that moves it checks, atomically with its writes, that the
// status is one the state machine allows the move from (blocks.From, passed
// as a comma-separated list), and returns the status it found, so the
// caller reports a refused move as a *blocks.TransitionError.
const luaAllowed = `
local function allowed(st, list)
  for s in string.gmatch(list, '[^,]+') do if s == st then return true end end
  return false
end
`

// markImmatureScript: KEYS 1 block. ARGV 1 confirmations, 2 now (ms), 3 the
// states it may move from. Returns the status before (moved only when
// allowed), or false when the block is unknown.
var markImmatureScript = redis.NewScript(luaAllowed + `
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if allowed(st, ARGV[3]) then
  redis.call('HSET', KEYS[1], 'status', 'immature', 'confirmations', ARGV[1], 'updated_at', ARGV[2])
end
return st
`)

// orphanScript: KEYS 1 block, 2 unconfirmed index, 3 commit pending, then
// the block keys of the windows its coinbase committed. ARGV 1 hash, 2 now
// (ms), 3 the states it may move from, then the committed hashes. The
// windows an orphan committed are no longer committed on the main chain:
// they return to the pending set, for the pool's next block to commit.
// Returns the status before (orphaned now only when allowed), false when
// the block is unknown.
var orphanScript = redis.NewScript(luaAllowed + `
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if not allowed(st, ARGV[3]) then return st end
redis.call('HSET', KEYS[1], 'status', 'orphaned', 'updated_at', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 4, #ARGV do
  local k = KEYS[i]
  if redis.call('HGET', k, 'committed_in') == ARGV[1] then
    redis.call('HDEL', k, 'committed_in')
    redis.call('ZADD', KEYS[3], redis.call('HGET', k, 'height') or 0, ARGV[i])
  end
end
return st
`)

// creditScript credits a matured block exactly once: the status check and
// every write are in one script.
//
// KEYS: 1 block, 2 balances, 3 fee balance, 4 utxos, 5 unconfirmed index,
// 6 block credits.
// ARGV: 1 hash, 2 now (ms), 3 reward, 4 fee, 5 confirmations, 6 number of
// credits n, then n address/amount pairs, then the number of UTXOs m, then m
// outpoint/value pairs, then the states it may move from.
// Returns the status before (credited now only when allowed), false when
// the block is unknown.
var creditScript = redis.NewScript(luaAllowed + `
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if not allowed(st, ARGV[#ARGV]) then return st end
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
return st
`)

// fromStates is the comma-separated list of states a block may move to to
// from (the scripts' "allowed" argument).
func fromStates(to blocks.State) string {
	from := blocks.From(to)
	parts := make([]string, len(from))
	for i, s := range from {
		parts[i] = string(s)
	}
	return strings.Join(parts, ",")
}

// moved turns a script's "status before" into the move's outcome: nil when
// the state machine allows the move from it (the script made it), a
// *blocks.TransitionError otherwise (nothing changed).
func moved(hash chainhash.Hash, before string, to blocks.State) error {
	return blocks.Transition(hash, blocks.State(before), to)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

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
	st, err := markImmatureScript.Run(ctx, s.rdb, []string{s.blockKey(h)}, confirmations, ms(now), fromStates(blocks.StateImmature)).Text()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: mark block %s immature: %w", h, err)
	}
	if err := moved(hash, st, blocks.StateImmature); err != nil {
		return payouts.BlockStatus(st), fmt.Errorf("redisstore: mark block immature: %w", err)
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
	args := []any{h, ms(now), fromStates(blocks.StateOrphaned)}
	for _, c := range committed {
		keys = append(keys, s.blockKey(c))
		args = append(args, c)
	}
	st, err := orphanScript.Run(ctx, s.rdb, keys, args...).Text()
	if errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: orphan block %s: %w", h, err)
	}
	if err := moved(hash, st, blocks.StateOrphaned); err != nil {
		return false, fmt.Errorf("redisstore: orphan block: %w", err)
	}
	return true, nil
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
	args = append(args, fromStates(blocks.StateCredited))
	keys := []string{s.blockKey(h), s.BalancesKey(), s.FeeBalanceKey(), s.UTXOsKey(),
		s.unconfirmedBlocksKey(), s.blockCreditsKey(h)}
	st, err := creditScript.Run(ctx, s.rdb, keys, args...).Text()
	if errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: credit block %s: %w", h, err)
	}
	if err := moved(c.Hash, st, blocks.StateCredited); err != nil {
		return false, fmt.Errorf("redisstore: credit block: %w", err)
	}
	return true, nil
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
