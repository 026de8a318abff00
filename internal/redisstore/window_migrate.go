package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The upgrade from the window list of versions before slices (4d630ac):
// those versions kept the PPLNS window in P:{acct}:window, a list of
// "seq|address|units" entries, newest at index 0, one per address per
// batch (seq: the address's first share in the batch, units: Σ of its
// shares in the batch), with window:total and window:limit beside it.
// MigrateWindow turns that list into the oldest sealed slices of the
// window, in order and to the unit, in three steps:
//
//  1. stage: the list (immutable: nothing writes it any more) is read
//     oldest first, 1000 entries per LRANGE, and cut into about
//     windowSlices slices of about equal units under pplns:mig:s:<j>
//     (j = 1 oldest), each written whole in one MULTI (a rerun after a crash
//     overwrites the same slices with the same contents);
//  2. the staged slices' units and their sum go in pplns:mig:slices and
//     pplns:mig:staged, in one MULTI: staging is complete;
//  3. one script (bounded by the number of slices) splices them in below
//     the live window: the live slices move up by k ids, the staged ones
//     take the k ids below them, the totals add up, the old keys go and
//     pplns:migrated records it. A second run finds pplns:migrated and does
//     nothing.
//
// What the old entries do not carry cannot be recovered: the sequence of an
// address's last share within a batch (a migrated slice entry's last
// sequence is the first sequence of the address's last old entry in that
// slice), and the order of shares inside a batch beyond the first share of
// each address.

// Keys of the migration.
func (s *Store) windowMigratedKey() string    { return s.key(acctTag, "pplns", "migrated") }
func (s *Store) windowMigStagedKey() string   { return s.key(acctTag, "pplns", "mig", "staged") }
func (s *Store) windowMigSlicesKey() string   { return s.key(acctTag, "pplns", "mig", "slices") }
func (s *Store) windowMigSlicePrefix() string { return s.key(acctTag, "pplns", "mig", "s") + ":" }

// ErrWindowPinned: the old window list cannot be migrated because blocks
// were recorded from the new window already (their archives pin its
// slices, and moving slices under them would change their windows).
var ErrWindowPinned = errors.New("redisstore: blocks were recorded since the upgrade; the old window list is left as it is")

// WindowMigration is what MigrateWindow did.
type WindowMigration struct {
	// Done: the old list is part of the window now (this call or an
	// earlier one; Already tells which). Neither: there was no old list.
	Done, Already bool
	Entries       int64  // old list entries migrated
	Slices        int64  // slices they became
	Units         string // their Σ units (decimal)
}

// migrateChunk is how many old entries one LRANGE reads.
const migrateChunk = 1000

// MigrateWindow moves the PPLNS window list of versions before slices into
// the window's slices, once (docs/redis.md, "Upgrade notes"). It is
// idempotent and resumes after a crash between any two steps; the daemon
// runs it when the stratum role starts, before its first batch or block
// record. It fails with ErrWindowPinned, changing nothing, when a block was
// recorded from the new window since the upgrade.
func (s *Store) MigrateWindow(ctx context.Context) (WindowMigration, error) {
	var res WindowMigration
	done, err := s.rdb.Get(ctx, s.windowMigratedKey()).Result()
	switch {
	case err == nil:
		return parseMigrated(done, true)
	case !errors.Is(err, redis.Nil):
		return res, fmt.Errorf("redisstore: window migration: %w", err)
	}
	n, err := s.rdb.LLen(ctx, s.windowKey()).Result()
	if err != nil {
		return res, fmt.Errorf("redisstore: window migration: %w", err)
	}
	_, err = s.rdb.Get(ctx, s.windowMigStagedKey()).Result()
	if errors.Is(err, redis.Nil) {
		if n == 0 {
			return res, nil // nothing to migrate
		}
		if err := s.stageOldWindow(ctx, n); err != nil {
			// Another process may have finished it meanwhile (and deleted
			// the old list under this one's reads).
			if done, gerr := s.rdb.Get(ctx, s.windowMigratedKey()).Result(); gerr == nil {
				return parseMigrated(done, true)
			}
			return res, err
		}
	} else if err != nil {
		return res, fmt.Errorf("redisstore: window migration: %w", err)
	}
	r, err := windowSpliceScript.Run(ctx, s.rdb,
		[]string{s.windowMigratedKey(), s.windowMigStagedKey(), s.win.pins, s.win.cur, s.win.slices, s.win.total,
			s.win.limit, s.windowKey(), s.windowTotalKey(), s.windowLimitKey(), s.windowMigSlicesKey()},
		s.win.slice, s.windowMigSlicePrefix(), ms(time.Now())).StringSlice()
	if err != nil {
		if strings.Contains(err.Error(), "PINNED") {
			return res, ErrWindowPinned
		}
		return res, fmt.Errorf("redisstore: window migration: splice: %w", err)
	}
	if len(r) != 2 {
		return res, fmt.Errorf("redisstore: window migration: splice returned %q", r)
	}
	return parseMigrated(r[1], r[0] == "0")
}

// parseMigrated reads pplns:migrated, "slices|units|entries|unix ms".
func parseMigrated(v string, already bool) (WindowMigration, error) {
	p := strings.Split(v, "|")
	if len(p) != 4 {
		return WindowMigration{}, fmt.Errorf("redisstore: window migration: bad record %q", v)
	}
	k, err1 := strconv.ParseInt(p[0], 10, 64)
	e, err2 := strconv.ParseInt(p[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return WindowMigration{}, fmt.Errorf("redisstore: window migration: bad record %q: %w", v, err)
	}
	return WindowMigration{Done: true, Already: already, Slices: k, Units: p[1], Entries: e}, nil
}

// migSlice is one staged slice being filled.
type migSlice struct {
	order []string
	first map[string]string
	last  map[string]string
	units map[string]*big.Int
	sum   big.Int
}

func newMigSlice() *migSlice {
	return &migSlice{first: map[string]string{}, last: map[string]string{}, units: map[string]*big.Int{}}
}

// stageOldWindow writes the old list's n entries as staged slices, then
// marks staging complete (steps 1 and 2 of MigrateWindow).
func (s *Store) stageOldWindow(ctx context.Context, n int64) error {
	// Pass 1: the total, for slices of about equal units.
	total := new(big.Int)
	if err := s.oldWindowEntries(ctx, n, func(_, _ string, u *big.Int) error {
		total.Add(total, u)
		return nil
	}); err != nil {
		return err
	}
	per := new(big.Int).Div(new(big.Int).Add(total, big.NewInt(windowSlices-1)), big.NewInt(windowSlices))
	if per.Sign() == 0 {
		per.SetInt64(1)
	}
	var sliceUnits []any
	j := int64(0)
	cur := newMigSlice()
	flush := func() error {
		if len(cur.order) == 0 {
			return nil
		}
		j++
		if err := s.writeMigSlice(ctx, j, cur); err != nil {
			return err
		}
		sliceUnits = append(sliceUnits, cur.sum.String())
		cur = newMigSlice()
		return nil
	}
	// Pass 2: the slices, oldest first.
	if err := s.oldWindowEntries(ctx, n, func(seq, addr string, u *big.Int) error {
		if _, ok := cur.units[addr]; !ok {
			cur.order = append(cur.order, addr)
			cur.first[addr] = seq
			cur.units[addr] = new(big.Int)
		}
		cur.last[addr] = seq
		cur.units[addr].Add(cur.units[addr], u)
		cur.sum.Add(&cur.sum, u)
		if cur.sum.Cmp(per) >= 0 {
			return flush()
		}
		return nil
	}); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	err := s.unlessMigrated(ctx, func(p redis.Pipeliner) {
		p.Del(ctx, s.windowMigSlicesKey())
		p.RPush(ctx, s.windowMigSlicesKey(), sliceUnits...)
		p.Set(ctx, s.windowMigStagedKey(), fmt.Sprintf("%d|%s|%d", j, total, n), 0)
	})
	if err != nil {
		return fmt.Errorf("redisstore: window migration: mark staged: %w", err)
	}
	return nil
}

// errMigratedMeanwhile: another process finished the migration while this
// one was staging.
var errMigratedMeanwhile = errors.New("redisstore: window migration: done by another process meanwhile")

// unlessMigrated runs writes in one MULTI unless pplns:migrated exists
// (WATCHed): several stratum processes starting at once may stage the same
// slices (the same contents, each written whole), but none writes staging
// keys once one of them has spliced them in, so none is left behind.
func (s *Store) unlessMigrated(ctx context.Context, writes func(redis.Pipeliner)) error {
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, s.windowMigratedKey()).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return errMigratedMeanwhile
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			writes(p)
			return nil
		})
		return err
	}, s.windowMigratedKey())
	if errors.Is(err, redis.TxFailedErr) {
		return errMigratedMeanwhile // the key changed: it was written
	}
	return err
}

// writeMigSlice writes staged slice j whole, in one MULTI.
func (s *Store) writeMigSlice(ctx context.Context, j int64, sl *migSlice) error {
	key := s.windowMigSlicePrefix() + strconv.FormatInt(j, 10)
	err := s.unlessMigrated(ctx, func(p redis.Pipeliner) {
		p.Del(ctx, key, key+":order")
		for i := 0; i < len(sl.order); i += sliceChunk {
			part := sl.order[i:min(i+sliceChunk, len(sl.order))]
			fields := make([]any, 0, 2*len(part))
			order := make([]any, len(part))
			for x, a := range part {
				fields = append(fields, a, sl.first[a]+"|"+sl.last[a]+"|"+sl.units[a].String())
				order[x] = a
			}
			p.HSet(ctx, key, fields...)
			p.RPush(ctx, key+":order", order...)
		}
	})
	if err != nil {
		return fmt.Errorf("redisstore: window migration: stage slice %d: %w", j, err)
	}
	return nil
}

// oldWindowEntries calls fn with each of the old list's n entries, oldest
// first (the list is newest first).
func (s *Store) oldWindowEntries(ctx context.Context, n int64, fn func(seq, addr string, units *big.Int) error) error {
	for hi := n - 1; hi >= 0; hi -= migrateChunk {
		lo := max(0, hi-migrateChunk+1)
		raw, err := s.rdb.LRange(ctx, s.windowKey(), lo, hi).Result()
		if err != nil {
			return fmt.Errorf("redisstore: window migration: read the old window: %w", err)
		}
		if int64(len(raw)) != hi-lo+1 {
			return fmt.Errorf("redisstore: window migration: the old window changed while read (%d entries at %d–%d)", len(raw), lo, hi)
		}
		for i := len(raw) - 1; i >= 0; i-- {
			e, err := ParseWindowEntry(raw[i])
			if err != nil {
				return fmt.Errorf("redisstore: window migration: entry %d: %w", lo+int64(i), err)
			}
			u, ok := new(big.Int).SetString(e.Units, 10)
			if !ok || u.Sign() < 0 {
				return fmt.Errorf("redisstore: window migration: entry %d: bad units %q", lo+int64(i), e.Units)
			}
			if err := fn(e.Seq, e.Address, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// windowSpliceScript puts the staged slices below the live window (step 3
// of MigrateWindow), atomically, in work bounded by the number of slices.
// KEYS: 1 migrated, 2 staged, 3 pins, 4 cur, 5 sealed slices, 6 total,
// 7 limit, 8 old list, 9 old total, 10 old limit, 11 staged slices' units.
// ARGV: 1 slice key prefix, 2 staged slice key prefix, 3 now (ms).
// Returns {1, record} when it spliced them in now, {0, record} when the
// migration was done already, the record being "slices|units|entries|ms";
// the error
// PINNED when a block's window pins slices (nothing changed), another when
// the old list no longer has the staged number of entries (the staging is
// dropped, to be done again).
var windowSpliceScript = redis.NewScript(luaUnits + `
local done = redis.call('GET', KEYS[1])
if done then return {'0', done} end
local staged = redis.call('GET', KEYS[2])
if not staged then return redis.error_reply('not staged') end
if redis.call('ZCARD', KEYS[3]) > 0 then return redis.error_reply('PINNED') end
local k, units, entries = string.match(staged, '^(%d+)|(%d+)|(%d+)$')
k = tonumber(k)
if redis.call('LLEN', KEYS[8]) ~= tonumber(entries) then
  -- A process of the old version wrote the list after it was staged: stage
  -- again at the next run.
  redis.call('DEL', KEYS[2])
  return redis.error_reply('the old window changed while it was migrated (' .. entries .. ' entries staged)')
end
local su = redis.call('LRANGE', KEYS[11], 0, -1)
if #su ~= k then return redis.error_reply('staged ' .. k .. ' slices, ' .. #su .. ' units') end
local th, tl = parse(redis.call('GET', KEYS[6]))
local uh, ul = parse(units)
if not th or not uh then return redis.error_reply('window total too large') end
local cur = redis.call('GET', KEYS[4])
local live = redis.call('LRANGE', KEYS[5], 0, -1)
local curid, curu = nil, '0'
if cur then
  local i, u = string.match(cur, '^(%d+)|(%d+)|')
  curid, curu = tonumber(i), u
end
-- The migrated slices take the ids from the oldest live one up; the live
-- ones move up by k, newest first so no id is overwritten.
local base = 1
if #live > 0 then base = tonumber(string.match(live[#live], '^(%d+)|'))
elseif curid then base = curid end
local function move(from, to)
  if redis.call('EXISTS', from) == 1 then redis.call('RENAME', from, to) end
  if redis.call('EXISTS', from .. ':order') == 1 then redis.call('RENAME', from .. ':order', to .. ':order') end
end
if curid then move(ARGV[1] .. curid, ARGV[1] .. (curid + k)) end
local list = {}
for i, e in ipairs(live) do
  local id, rest = string.match(e, '^(%d+)(|.*)$')
  id = tonumber(id)
  move(ARGV[1] .. id, ARGV[1] .. (id + k))
  list[#list + 1] = (id + k) .. rest
end
for j = k, 1, -1 do
  move(ARGV[2] .. j, ARGV[1] .. (base + j - 1))
  list[#list + 1] = (base + j - 1) .. '|' .. su[j] .. '|'
end
redis.call('DEL', KEYS[5])
for i = 1, #list, 1000 do redis.call('RPUSH', KEYS[5], unpack(list, i, math.min(i + 999, #list))) end
-- The oldest sealed slice is the first migrated one now.
if curid then
  redis.call('SET', KEYS[4], (curid + k) .. '|' .. curu .. '|' .. su[1])
else
  redis.call('SET', KEYS[4], (base + k) .. '|0|' .. su[1])
end
redis.call('SET', KEYS[6], fmt(add(th, tl, uh, ul)))
local oldlim = redis.call('GET', KEYS[10])
if oldlim and oldlim ~= '0' and redis.call('EXISTS', KEYS[7]) == 0 then redis.call('SET', KEYS[7], oldlim) end
local rec = k .. '|' .. units .. '|' .. entries .. '|' .. ARGV[3]
redis.call('SET', KEYS[1], rec)
redis.call('UNLINK', KEYS[2], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
return {'1', rec}
`)
