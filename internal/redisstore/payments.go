package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/payouts/payment"
)

var _ payment.Store = (*Store)(nil)

// commitPayoutScript checks every balance, the fee account and every input
// UTXO, then debits, reserves (removes) the inputs, adds to the totals and
// writes the payout record: all or nothing. A failed check is an error
// reply starting with CONFLICT.
//
// KEYS: balances, fees, utxos, payout, payouts index, open payouts, totals.
// ARGV: id, state, data, fee account debit, paid, fee, n outputs, then n
// pairs (address, debit), then pairs (outpoint, value) of the inputs.
var commitPayoutScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[4]) == 1 then
  return redis.error_reply('CONFLICT payout ' .. ARGV[1] .. ' already exists')
end
local n = tonumber(ARGV[7])
local i = 8
for k = 1, n do
  local bal = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if bal == nil or bal < tonumber(ARGV[i+1]) then
    return redis.error_reply('CONFLICT balance of ' .. ARGV[i] .. ' is ' .. tostring(bal) .. ', debit ' .. ARGV[i+1])
  end
  i = i + 2
end
local firstInput = i
while i <= #ARGV do
  local v = redis.call('HGET', KEYS[3], ARGV[i])
  if not v or tonumber(v) ~= tonumber(ARGV[i+1]) then
    return redis.error_reply('CONFLICT utxo ' .. ARGV[i] .. ' is not an available pool utxo of ' .. ARGV[i+1] .. ' sat')
  end
  i = i + 2
end
local feeDebit = tonumber(ARGV[4])
if feeDebit > 0 then
  local f = tonumber(redis.call('GET', KEYS[2]) or '0')
  if f == nil or f < feeDebit then
    return redis.error_reply('CONFLICT fee account holds ' .. tostring(f) .. ', fee ' .. ARGV[4])
  end
  redis.call('DECRBY', KEYS[2], ARGV[4])
end
i = 8
for k = 1, n do
  if tonumber(ARGV[i+1]) ~= 0 then -- Redis refuses "-0" as an integer
    local left = redis.call('HINCRBY', KEYS[1], ARGV[i], '-' .. ARGV[i+1])
    if left == 0 then redis.call('HDEL', KEYS[1], ARGV[i]) end
  end
  i = i + 2
end
i = firstInput
while i <= #ARGV do
  redis.call('HDEL', KEYS[3], ARGV[i])
  i = i + 2
end
redis.call('HSET', KEYS[4], 'state', ARGV[2], 'data', ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[1], ARGV[1])
redis.call('HINCRBY', KEYS[7], 'paid', ARGV[5])
redis.call('HINCRBY', KEYS[7], 'fees', ARGV[6])
redis.call('HINCRBY', KEYS[7], 'payouts', 1)
return 'OK'
`)

// updatePayoutScript writes a payout if its stored state is one of the
// allowed ones; on confirmation it also closes the payout and returns the
// change output to the pool UTXOs.
//
// KEYS: payout, open payouts, utxos.
// ARGV: id, new state, data, change outpoint ("" for none), change value,
// then the allowed current states.
var updatePayoutScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return redis.error_reply('NOTFOUND payout ' .. ARGV[1]) end
local ok = false
for k = 6, #ARGV do
  if ARGV[k] == cur then ok = true end
end
if not ok then return redis.error_reply('WRONGSTATE payout ' .. ARGV[1] .. ' is ' .. cur) end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'data', ARGV[3])
if ARGV[2] == 'confirmed' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[3], ARGV[4], ARGV[5]) end
end
return 'OK'
`)

// holdPayoutScript checks that a payout is stored in the given state and
// writes that state again. The write is the fence of EnsureCommitted: WAIT
// waits for this connection's last write, and a payout committed by an
// earlier run or another process was written on another connection; a
// write of our own after it makes the WAIT that follows cover the commit.
//
// KEYS: payout. ARGV: id, state.
var holdPayoutScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return redis.error_reply('NOTFOUND payout ' .. ARGV[1]) end
if cur ~= ARGV[2] then return redis.error_reply('WRONGSTATE payout ' .. ARGV[1] .. ' is ' .. cur) end
redis.call('HSET', KEYS[1], 'state', cur)
return 'OK'
`)

// abandonPayoutScript gives a payout's debits back if its state is one of
// the allowed ones: credits balances and the fee account, reduces the
// totals, returns inputs to the UTXOs, closes and rewrites the payout.
//
// KEYS: payout, open payouts, balances, fees, utxos, totals.
// ARGV: id, new state, data, fee account credit, paid, fee, n allowed
// states, the states, m outputs, m pairs (address, debit), then pairs
// (outpoint, value) of the inputs to restore.
var abandonPayoutScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return redis.error_reply('NOTFOUND payout ' .. ARGV[1]) end
local ns = tonumber(ARGV[7])
local ok = false
for k = 8, 7 + ns do
  if ARGV[k] == cur then ok = true end
end
if not ok then return redis.error_reply('WRONGSTATE payout ' .. ARGV[1] .. ' is ' .. cur) end
local i = 8 + ns
local m = tonumber(ARGV[i])
i = i + 1
for k = 1, m do
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i+1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HSETNX', KEYS[5], ARGV[i], ARGV[i+1])
  i = i + 2
end
if tonumber(ARGV[4]) > 0 then redis.call('INCRBY', KEYS[4], ARGV[4]) end
-- Redis refuses "-0" as an integer: a zero is not subtracted at all.
if tonumber(ARGV[5]) ~= 0 then redis.call('HINCRBY', KEYS[6], 'paid', '-' .. ARGV[5]) end
if tonumber(ARGV[6]) ~= 0 then redis.call('HINCRBY', KEYS[6], 'fees', '-' .. ARGV[6]) end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'data', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 'OK'
`)

// scriptErr maps the scripts' error replies onto payment's sentinels.
func scriptErr(op string, err error) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "CONFLICT"):
		return fmt.Errorf("redisstore: %s: %s: %w", op, msg, payment.ErrConflict)
	case strings.HasPrefix(msg, "NOTFOUND"):
		return fmt.Errorf("redisstore: %s: %s: %w", op, msg, payment.ErrNotFound)
	case strings.HasPrefix(msg, "WRONGSTATE"):
		return fmt.Errorf("redisstore: %s: %s: %w", op, msg, payment.ErrWrongState)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// Thresholds returns the per-address payout thresholds.
func (s *Store) Thresholds(ctx context.Context) (map[string]int64, error) {
	return s.intHash(ctx, s.payoutThresholdsKey())
}

// SetThreshold sets an address's payout threshold, or removes it (sats 0).
func (s *Store) SetThreshold(ctx context.Context, address string, sats int64) error {
	// Every writer (admin API, lodectl) goes through here: the one rule.
	if err := payment.CheckThreshold(sats); err != nil {
		return fmt.Errorf("redisstore: set payout threshold: %w", err)
	}
	var err error
	if sats == 0 {
		err = s.rdb.HDel(ctx, s.payoutThresholdsKey(), address).Err()
	} else {
		err = s.rdb.HSet(ctx, s.payoutThresholdsKey(), address, sats).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: set payout threshold: %w", err)
	}
	return nil
}

// Balances and FeeBalance (blocks.go) complete payment.Store.

// UTXOs returns the pool's unreserved outputs (matured coinbase outputs
// the unlocker recorded, change of confirmed payouts), sorted by outpoint.
func (s *Store) UTXOs(ctx context.Context) ([]payment.UTXO, error) {
	m, err := s.intHash(ctx, s.UTXOsKey())
	if err != nil {
		return nil, err
	}
	out := make([]payment.UTXO, 0, len(m))
	for k, v := range m {
		op, err := parseOutpoint(k)
		if err != nil {
			return nil, fmt.Errorf("redisstore: pool utxo %q: %w", k, err)
		}
		out = append(out, payment.UTXO{OutPoint: op, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OutPoint.String() < out[j].OutPoint.String() })
	return out, nil
}

// NextPayoutID allocates a payout id (ids are never reused; gaps are fine).
func (s *Store) NextPayoutID(ctx context.Context) (int64, error) {
	id, err := s.rdb.Incr(ctx, s.payoutSeqKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: next payout id: %w", err)
	}
	return id, nil
}

// CommitPayout debits, reserves the inputs and records p atomically (see
// payment.Store); with Config.MinReplicasAcked it returns nil only once
// that many replicas have the commit (runAcked).
func (s *Store) CommitPayout(ctx context.Context, p *payment.Payout) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("redisstore: encode payout: %w", err)
	}
	args := []any{p.ID, string(p.State), data, p.FeeAccountDebit, p.Paid(), p.Fee, len(p.Outputs)}
	for _, o := range p.Outputs {
		if o.Debit <= 0 {
			return fmt.Errorf("redisstore: commit payout: debit %d for %s", o.Debit, o.Address)
		}
		args = append(args, o.Address, o.Debit)
	}
	for _, in := range p.Inputs {
		args = append(args, in.OutPoint, in.Value)
	}
	keys := []string{s.BalancesKey(), s.FeeBalanceKey(), s.UTXOsKey(), s.payoutKey(p.ID),
		s.payoutsIndexKey(), s.openPayoutsKey(), s.payoutTotalsKey()}
	if err := s.runAcked(ctx, commitPayoutScript, keys, args...); err != nil {
		return scriptErr("commit payout", err)
	}
	return nil
}

// EnsureCommitted returns nil once p is stored in state p.State and, with
// Config.MinReplicasAcked, that many replicas have it (see payment.Store):
// a fence write and WAIT on the {acct} master's connection (runAcked).
// Fewer replicas is ErrNotReplicated.
func (s *Store) EnsureCommitted(ctx context.Context, p *payment.Payout) error {
	if err := s.runAcked(ctx, holdPayoutScript, []string{s.payoutKey(p.ID)}, p.ID, string(p.State)); err != nil {
		return scriptErr("ensure payout committed", err)
	}
	return nil
}

// UpdatePayout writes p if its stored state is one of from.
func (s *Store) UpdatePayout(ctx context.Context, p *payment.Payout, from ...payment.State) error {
	if p.State == payment.StateConfirmed || p.State == payment.StateAbandoned {
		return fmt.Errorf("redisstore: update payout: use ConfirmPayout or AbandonPayout for %s", p.State)
	}
	return s.writePayout(ctx, "update payout", p, "", 0, from)
}

// ConfirmPayout marks p confirmed, closes it and returns its change output
// to the pool UTXOs, if its stored state is one of from.
func (s *Store) ConfirmPayout(ctx context.Context, p *payment.Payout, from ...payment.State) error {
	if p.State != payment.StateConfirmed {
		return fmt.Errorf("redisstore: confirm payout: state %q", p.State)
	}
	var op string
	var val int64
	if c, ok := p.Change(); ok {
		op, val = c.Key(), c.Value
	}
	return s.writePayout(ctx, "confirm payout", p, op, val, from)
}

// AbandonPayout gives p's debits back and closes it (see payment.Store).
func (s *Store) AbandonPayout(ctx context.Context, p *payment.Payout, restore []payment.UTXO, from ...payment.State) error {
	if p.State != payment.StateAbandoned || len(from) == 0 {
		return fmt.Errorf("redisstore: abandon payout: state %q from %v", p.State, from)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("redisstore: encode payout: %w", err)
	}
	args := []any{p.ID, string(p.State), data, p.FeeAccountDebit, p.Paid(), p.Fee, len(from)}
	for _, st := range from {
		args = append(args, string(st))
	}
	args = append(args, len(p.Outputs))
	for _, o := range p.Outputs {
		args = append(args, o.Address, o.Debit)
	}
	for _, u := range restore {
		args = append(args, u.Key(), u.Value)
	}
	keys := []string{s.payoutKey(p.ID), s.openPayoutsKey(), s.BalancesKey(), s.FeeBalanceKey(), s.UTXOsKey(), s.payoutTotalsKey()}
	if err := abandonPayoutScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return scriptErr("abandon payout", err)
	}
	return nil
}

func (s *Store) writePayout(ctx context.Context, what string, p *payment.Payout, changeOp string, changeVal int64, from []payment.State) error {
	if len(from) == 0 {
		return fmt.Errorf("redisstore: %s: no allowed states", what)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("redisstore: encode payout: %w", err)
	}
	args := []any{p.ID, string(p.State), data, changeOp, changeVal}
	for _, st := range from {
		args = append(args, string(st))
	}
	keys := []string{s.payoutKey(p.ID), s.openPayoutsKey(), s.UTXOsKey()}
	if err := updatePayoutScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return scriptErr(what, err)
	}
	return nil
}

func decodePayout(id int64, data string) (*payment.Payout, error) {
	p := new(payment.Payout)
	if err := json.Unmarshal([]byte(data), p); err != nil {
		return nil, fmt.Errorf("redisstore: decode payout %d: %w", id, err)
	}
	return p, nil
}

// Payout returns one payout.
func (s *Store) Payout(ctx context.Context, id int64) (*payment.Payout, error) {
	data, err := s.rdb.HGet(ctx, s.payoutKey(id), "data").Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: payout %d: %w", id, payment.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: read payout %d: %w", id, err)
	}
	return decodePayout(id, data)
}

func (s *Store) payoutsByID(ctx context.Context, ids []string) ([]*payment.Payout, error) {
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			n, _ := strconv.ParseInt(id, 10, 64)
			cmds[i] = p.HGet(ctx, s.payoutKey(n), "data")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: read payouts: %w", err)
	}
	out := make([]*payment.Payout, 0, len(ids))
	for i, c := range cmds {
		data, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue // index entry without record: cannot happen through the scripts
		}
		if err != nil {
			return nil, fmt.Errorf("redisstore: read payout %s: %w", ids[i], err)
		}
		n, _ := strconv.ParseInt(ids[i], 10, 64)
		p, err := decodePayout(n, data)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Payouts returns up to limit payouts, newest first.
func (s *Store) Payouts(ctx context.Context, limit int) ([]*payment.Payout, error) {
	if limit <= 0 {
		return nil, nil
	}
	ids, err := s.rdb.ZRevRange(ctx, s.payoutsIndexKey(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list payouts: %w", err)
	}
	return s.payoutsByID(ctx, ids)
}

// OpenPayouts returns the payouts not yet confirmed, oldest first.
func (s *Store) OpenPayouts(ctx context.Context) ([]*payment.Payout, error) {
	ids, err := s.rdb.ZRange(ctx, s.openPayoutsKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list open payouts: %w", err)
	}
	return s.payoutsByID(ctx, ids)
}

// Totals returns the running payout totals.
func (s *Store) Totals(ctx context.Context) (payment.Totals, error) {
	m, err := s.intHash(ctx, s.payoutTotalsKey())
	if err != nil {
		return payment.Totals{}, err
	}
	return payment.Totals{Paid: m["paid"], Fees: m["fees"], Payouts: m["payouts"]}, nil
}
