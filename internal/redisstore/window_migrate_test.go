package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// oldAcctScript is the accounting script of the versions before slices
// (4d630ac^:internal/redisstore/shares.go), verbatim: the tests write the
// old window list exactly as those versions did.
//
// KEYS: window, window total, window limit, round, round total, applied.
// ARGV: batch seq (20 digits), window limit units ("0": keep the stored
// one), applied TTL seconds, then per window entry: seq, address, units.
var oldAcctScript = redis.NewScript(luaUnits + `
local hwm = redis.call('GET', KEYS[6])
if hwm and hwm >= ARGV[1] then return {0, 0} end
local th, tl = parse(redis.call('GET', KEYS[2]))
local rh, rl = 0, 0
-- The block-found snapshot renames the round hash away; a missing hash means
-- a new round, so its total starts again from zero.
if redis.call('EXISTS', KEYS[4]) == 1 then rh, rl = parse(redis.call('GET', KEYS[5])) end
local per, order = {}, {}
local entries = {}
for i = 4, #ARGV, 3 do
  local seq, addr, u = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local uh, ul = parse(u)
  th, tl = add(th, tl, uh, ul)
  rh, rl = add(rh, rl, uh, ul)
  local p = per[addr]
  if not p then
    p = {seq, 0, 0}
    per[addr] = p
    order[#order + 1] = addr
  end
  p[2], p[3] = add(p[2], p[3], uh, ul)
end
for _, addr in ipairs(order) do
  local p = per[addr]
  local s = fmt(p[2], p[3])
  entries[#entries + 1] = p[1] .. '|' .. addr .. '|' .. s
  local ch, cl = parse(redis.call('HGET', KEYS[4], addr))
  redis.call('HSET', KEYS[4], addr, fmt(add(ch, cl, p[2], p[3])))
end
for i = 1, #entries, 1000 do
  redis.call('LPUSH', KEYS[1], unpack(entries, i, math.min(i + 999, #entries)))
end
redis.call('SET', KEYS[5], fmt(rh, rl))
local limit = ARGV[2]
if limit == '0' then
  limit = redis.call('GET', KEYS[3])
else
  redis.call('SET', KEYS[3], limit)
end
local popped = 0
if limit and limit ~= '0' then
  local nh, nl = parse(limit)
  while true do
    local oldest = redis.call('LINDEX', KEYS[1], -1)
    if not oldest then break end
    local oh, ol = parse(string.match(oldest, '([^|]*)$'))
    local xh, xl = sub(th, tl, oh, ol)
    if not ge(xh, xl, nh, nl) then break end
    redis.call('RPOP', KEYS[1])
    th, tl = xh, xl
    popped = popped + 1
  end
end
redis.call('SET', KEYS[2], fmt(th, tl))
redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[3])
return {#entries, popped}
`)

// writeOldWindow applies batches of random shares through the old script,
// as instance "old" did (share sequences, then the batch's above them), and
// returns the old list as it is left, oldest first.
func writeOldWindow(t *testing.T, s *Store, r *rand.Rand, batches int, limit string) []window.Entry {
	t.Helper()
	ctx := context.Background()
	seq := uint64(0)
	for range batches {
		args := []any{"", limit, 86400}
		for range 1 + r.IntN(12) {
			seq++
			args = append(args, "old:"+strconv.FormatUint(seq, 10), fmt.Sprintf("bc1qaddr%02d", r.IntN(40)),
				strconv.FormatInt(1+r.Int64N(5_000_000_000), 10))
		}
		seq++
		args[0] = fmt.Sprintf("%020d", seq)
		keys := []string{s.windowKey(), s.windowTotalKey(), s.windowLimitKey(), s.key(acctTag, "oldround"),
			s.key(acctTag, "oldround", "total"), s.key(acctTag, "applied", "old")}
		if err := oldAcctScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := s.rdb.LRange(ctx, s.windowKey(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]window.Entry, 0, len(raw))
	for i := len(raw) - 1; i >= 0; i-- {
		e, err := ParseWindowEntry(raw[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, window.Entry{FirstSeq: e.Seq, LastSeq: e.Seq, Address: e.Address, Units: e.Units})
	}
	return out
}

// checkMigrated checks that the window's oldest entries are exactly the old
// list, oldest first: walking the migrated slices oldest first, each is the
// merge of the next run of old entries (per address its first entry's
// sequence, its last entry's sequence, Σ units, addresses in the order of
// their first entry), and together they use every old entry once.
func checkMigrated(t *testing.T, s *Store, old []window.Entry, slices int64) {
	t.Helper()
	live := liveEntries(t, s) // newest first
	// The migrated slices are the k oldest sealed ones; read them slice by
	// slice, oldest first.
	sealed, err := s.rdb.LRange(context.Background(), s.win.slices, -slices, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(sealed)) != slices {
		t.Fatalf("%d sealed slices, want at least %d", len(sealed), slices)
	}
	next := 0
	for i := len(sealed) - 1; i >= 0; i-- {
		var id int64
		var units string
		if _, err := fmt.Sscanf(sealed[i], "%d|%s", &id, &units); err != nil {
			t.Fatalf("slice entry %q: %v", sealed[i], err)
		}
		var got []window.Entry
		sum := new(big.Int)
		err := s.sliceEntries(context.Background(), id, 0, func(_ int64, l window.Leaf) error {
			got = append(got, window.Entry{FirstSeq: l.FirstSeq, LastSeq: l.LastSeq, Address: l.Address, Units: l.Units})
			u, _ := new(big.Int).SetString(l.Units, 10)
			sum.Add(sum, u)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Merge old entries until their units reach the slice's.
		var want []window.Entry
		at := map[string]int{}
		merged := new(big.Int)
		for merged.Cmp(sum) < 0 && next < len(old) {
			e := old[next]
			next++
			u, _ := new(big.Int).SetString(e.Units, 10)
			merged.Add(merged, u)
			if j, ok := at[e.Address]; ok {
				w, _ := new(big.Int).SetString(want[j].Units, 10)
				want[j].Units = w.Add(w, u).String()
				want[j].LastSeq = e.FirstSeq
				continue
			}
			at[e.Address] = len(want)
			want = append(want, e)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("migrated slice %d:\n got %v\nwant %v", id, got, want)
		}
		if units != sum.String()+"|" {
			t.Errorf("slice %d listed with %q, holds %s", id, units, sum)
		}
	}
	if next != len(old) {
		t.Fatalf("the migrated slices hold %d of the %d old entries", next, len(old))
	}
	// And in the window as the snapshot reads it: the oldest entries are
	// the migrated ones (the same check on liveEntries' totals).
	oldSum, liveSum := new(big.Int), new(big.Int)
	for _, e := range old {
		u, _ := new(big.Int).SetString(e.Units, 10)
		oldSum.Add(oldSum, u)
	}
	for _, e := range live {
		u, _ := new(big.Int).SetString(e.Units, 10)
		liveSum.Add(liveSum, u)
	}
	if liveSum.Cmp(oldSum) < 0 {
		t.Fatalf("window holds %s units, the old list %s", liveSum, oldSum)
	}
}

// unitsByAddress sums entries per address.
func unitsByAddress(es []window.Entry) map[string]string {
	m := map[string]*big.Int{}
	for _, e := range es {
		u, _ := new(big.Int).SetString(e.Units, 10)
		if m[e.Address] == nil {
			m[e.Address] = new(big.Int)
		}
		m[e.Address].Add(m[e.Address], u)
	}
	out := map[string]string{}
	for a, u := range m {
		out[a] = u.String()
	}
	return out
}

// TestMigrateWindow: an old window list, written by the old accounting
// script, becomes the oldest slices of the window, to the unit and in
// order; the migration is run twice and interrupted between its steps;
// batches applied before (the new window running already) and after it
// land in the window as usual, and a snapshot of the whole window counts
// old and new units together.
func TestMigrateWindow(t *testing.T) {
	cases := []struct {
		name      string
		limit     string // the old script's window limit ("0": never trimmed)
		newBefore int    // batches of the new version applied before the migration
		interrupt string // "", "staging" (a partial staging left behind), "staged" (staging done, splice not)
	}{
		{name: "fresh", limit: "0"},
		{name: "trimmed old list", limit: "300000000000"},
		{name: "new window running", limit: "0", newBefore: 40},
		{name: "interrupted while staging", limit: "0", newBefore: 3, interrupt: "staging"},
		{name: "interrupted after staging", limit: "0", interrupt: "staged"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := blocksTestStore(t)
			ctx := context.Background()
			r := rand.New(rand.NewPCG(uint64(i), 12))
			old := writeOldWindow(t, s, r, 300, c.limit)
			oldTotal, _ := s.rdb.Get(ctx, s.windowTotalKey()).Result()
			feed := &instanceFeed{name: "new"}
			for range c.newBefore {
				b, _ := feed.batch(randomShares(r, 5))
				if err := s.ApplyBatch(ctx, b, "0"); err != nil {
					t.Fatal(err)
				}
			}
			newBefore := liveEntries(t, s)
			switch c.interrupt {
			case "staging":
				// A crash while staging: a half-written staged slice (garbage)
				// and no staged mark. The next run stages again over it.
				if err := s.rdb.HSet(ctx, s.windowMigSlicePrefix()+"1", "junk", "x|y|1").Err(); err != nil {
					t.Fatal(err)
				}
				s.rdb.RPush(ctx, s.windowMigSlicePrefix()+"1:order", "junk")
			case "staged":
				n, _ := s.rdb.LLen(ctx, s.windowKey()).Result()
				if err := s.stageOldWindow(ctx, n); err != nil {
					t.Fatal(err)
				}
				if got := liveEntries(t, s); !reflect.DeepEqual(got, newBefore) {
					t.Fatal("staging changed the window")
				}
			}
			res, err := s.MigrateWindow(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Done || res.Already || res.Entries != int64(len(old)) || res.Units != oldTotal || res.Slices < 1 || res.Slices > windowSlices+1 {
				t.Fatalf("MigrateWindow = %+v (old list: %d entries, %s units)", res, len(old), oldTotal)
			}
			t.Logf("%d old entries → %d slices", len(old), res.Slices)
			checkMigrated(t, s, old, res.Slices)
			// The newer entries are unchanged, above the migrated ones.
			after := liveEntries(t, s)
			if len(newBefore) > 0 && !reflect.DeepEqual(after[:len(newBefore)], newBefore) {
				t.Fatal("the live window's entries changed")
			}
			// Units: the window is the old list plus the new batches, to the unit.
			wantUnits := unitsByAddress(append(append([]window.Entry{}, old...), newBefore...))
			if got := unitsByAddress(after); !reflect.DeepEqual(got, wantUnits) {
				t.Fatalf("window units by address %v, want %v", got, wantUnits)
			}
			w, err := s.Window(ctx)
			if err != nil {
				t.Fatal(err)
			}
			newSum := new(big.Int)
			for _, e := range newBefore {
				u, _ := new(big.Int).SetString(e.Units, 10)
				newSum.Add(newSum, u)
			}
			ot, _ := new(big.Int).SetString(oldTotal, 10)
			if w.Total != new(big.Int).Add(ot, newSum).String() {
				t.Fatalf("window total %s, want old %s + new %s", w.Total, oldTotal, newSum)
			}
			// The old keys and the staging are gone.
			for _, k := range []string{s.windowKey(), s.windowTotalKey(), s.windowLimitKey(), s.windowMigStagedKey(),
				s.windowMigSlicesKey(), s.windowMigSlicePrefix() + "1"} {
				if n, _ := s.rdb.Exists(ctx, k).Result(); n != 0 {
					t.Errorf("%s left behind", k)
				}
			}
			// Twice: nothing more.
			again, err := s.MigrateWindow(ctx)
			if err != nil || !again.Done || !again.Already || again.Units != res.Units || again.Slices != res.Slices {
				t.Fatalf("second MigrateWindow = %+v, %v", again, err)
			}
			if got := liveEntries(t, s); !reflect.DeepEqual(got, after) {
				t.Fatal("the second run changed the window")
			}
			// The window goes on as usual: a batch lands on top, and the
			// snapshot of the whole window counts everything.
			b, _ := feed.batch(randomShares(r, 5))
			if err := s.ApplyBatch(ctx, b, "0"); err != nil {
				t.Fatal(err)
			}
			all := liveEntries(t, s)
			if !reflect.DeepEqual(all[len(all)-len(after):], after) {
				t.Fatal("a batch after the migration changed the older entries")
			}
			whole := new(big.Int).Lsh(big.NewInt(1), 80) // above every total here: the whole window
			if _, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: testHash(1), Height: 1}, whole); err != nil {
				t.Fatal(err)
			}
			contrib, err := s.Contributions(ctx, testHash(1))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, c := range contrib {
				got[c.Address] = c.Units.String()
			}
			if want := unitsByAddress(all); !reflect.DeepEqual(got, want) {
				t.Fatalf("snapshot of the whole window %v, want %v", got, want)
			}
		})
	}
}

// TestMigrateWindowPinned: once a block was recorded from the new window
// (its archive pins slices), the old list is left as it is and nothing
// changes; without an old list there is nothing to do.
func TestMigrateWindowPinned(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	if res, err := s.MigrateWindow(ctx); err != nil || res.Done {
		t.Fatalf("without an old list: %+v, %v", res, err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	old := writeOldWindow(t, s, r, 20, "0")
	feed := &instanceFeed{name: "new"}
	b, _ := feed.batch(randomShares(r, 5))
	if err := s.ApplyBatch(ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	before := liveEntries(t, s)
	// An old process writes the list after it was staged: the splice
	// refuses and drops the staging; the next run stages it again.
	if err := s.stageOldWindow(ctx, int64(len(old))); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.LPush(ctx, s.windowKey(), "old:999999|bc1qaddr01|5").Err(); err != nil {
		t.Fatal(err)
	}
	old = append(old, window.Entry{FirstSeq: "old:999999", LastSeq: "old:999999", Address: "bc1qaddr01", Units: "5"})
	if _, err := s.MigrateWindow(ctx); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("migration of a list that changed after staging: %v", err)
	}
	if n, _ := s.rdb.Exists(ctx, s.windowMigStagedKey()).Result(); n != 0 {
		t.Fatal("the staging of a changed list was kept")
	}
	s.rdb.ZAdd(ctx, s.win.pins, redis.Z{Score: 1, Member: "somehash"})
	if _, err := s.MigrateWindow(ctx); !errors.Is(err, ErrWindowPinned) {
		t.Fatalf("err = %v, want ErrWindowPinned", err)
	}
	if got := liveEntries(t, s); !reflect.DeepEqual(got, before) {
		t.Fatal("the window changed")
	}
	if n, _ := s.rdb.LLen(ctx, s.windowKey()).Result(); n != int64(len(old)) {
		t.Fatalf("old list has %d entries, want %d", n, len(old))
	}
}

// TestMigrateWindowConcurrent: several stratum processes start at once after
// the upgrade, each with its own connection, and all migrate: the old list
// is spliced in once (one of them reports it done now, the others already
// done), the window holds it once, and no staging key is left behind.
func TestMigrateWindowConcurrent(t *testing.T) {
	s, rdb := blocksTestStore(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(21, 21))
	old := writeOldWindow(t, s, r, 300, "0")
	const procs = 4
	results := make([]WindowMigration, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		c := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
		t.Cleanup(func() { c.Close() })
		st := New(c, Config{Prefix: "t"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = st.MigrateWindow(ctx)
		}()
	}
	wg.Wait()
	now := 0
	for i := range procs {
		if errs[i] != nil {
			t.Fatalf("process %d: %v", i, errs[i])
		}
		if !results[i].Done || results[i].Entries != int64(len(old)) {
			t.Fatalf("process %d: %+v", i, results[i])
		}
		if !results[i].Already {
			now++
		}
	}
	if now != 1 {
		t.Fatalf("%d processes spliced the old list in", now)
	}
	checkMigrated(t, s, old, results[0].Slices)
	if got, want := unitsByAddress(liveEntries(t, s)), unitsByAddress(old); !reflect.DeepEqual(got, want) {
		t.Fatalf("window units %v, want %v", got, want)
	}
	keys, err := rdb.Keys(ctx, "*pplns:mig:*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("staging keys left behind: %v, %v", keys, err)
	}
}
