package redisstore

import (
	"math/bits"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// acctCache is what this Store's accounting script calls last wrote to the
// window and round keys, so that the next call can pass the values it
// expects and the values to write (acctScript, "Expectations"): a paced
// pool's one-share call then costs Redis no decimal parsing or formatting.
// It is a hint only: the script compares every value it reads with the
// expected one and computes as without it on any difference. It is filled
// from the script's replies (a call without or with unmet expectations
// returns what it wrote), forgotten on any error or doubt, and shared by
// the Store's concurrent ApplyBatch calls (the flusher and a spool replay):
// a race between them costs a call the fast way, never a wrong value.
type acctCache struct {
	mu    sync.Mutex
	known bool
	// The open slice: its id, its units and the oldest sealed slice's
	// units (if hasOld), and the stored string "id|units|oldest".
	id     int64
	cur    units
	oldest units
	hasOld bool
	curS   string
	// The window and round totals as stored, and the stored limit ("":
	// none).
	total, round   units
	totalS, roundS string
	limit          string
	// entries are the open slice's entries this Store knows (address →
	// "first|last|units"); complete means the slice holds no others (this
	// Store saw it start empty), so an address not in entries is expected
	// absent.
	entries  map[string]string
	complete bool
	// misses counts consecutive calls that found the window changed by
	// another writer since this Store's last call (another frontend of the
	// pool: its window total is not the one expected); after a few, skip leaves
	// the expectations out of that many calls, and asks for no state in
	// their replies (ARGV[7] "-"): they then cost Redis what a call cost
	// before expectations.
	misses, skip int
	// hits counts the calls whose expectations were met (tests,
	// benchmarks).
	hits uint64
}

// Bounds of the expectations.
const (
	// maxExpectDigits: lode expects only values below 10^24 units, where
	// its arithmetic and the script's (luaUnits: two base-10^12 limbs,
	// exact below 2^53 each, also for 80 × the open slice) agree exactly.
	maxExpectDigits = 24
	// maxExpectAddrs is the most addresses a call with expectations
	// holds: one HMGET chunk of the script.
	maxExpectAddrs = 2000
	// maxExpectEntries bounds acctCache.entries (an open slice of a large
	// pool; beyond it the cache forgets the slice's entries).
	maxExpectEntries = 1 << 16
	// acctMissLimit consecutive unmet expectations make the next
	// acctMissSkip calls go without.
	acctMissLimit, acctMissSkip = 4, 64
)

// acctPlan is one call's expectations and what the script then writes
// (ARGV 7-16 and the per-address entries of acctScript), as acctOps
// appends them, and the cache's state after it.
type acctPlan struct {
	ok                                   bool
	noState                              bool  // without expectations, and no state wanted back
	batch                                units // Σ units of the batch
	expCur, expTotal, expRound, expLimit string
	setLimit                             string // the limit to store ("": keep)
	block                                string // the block share's sequence ("": none)
	seal                                 bool
	sealID                               int64
	sealUnits                            units
	// Per address: its expected entry ("": absent) and, if present, the
	// entry's first share and the new units.
	expEntries, firsts []string
	newUnits           []units
	// The state after the call.
	nextID                                 int64
	nextCur, nextOld, nextTotal, nextRound units
	nextHasOld                             bool
	nextLimit                              string
}

// reset empties p for reuse.
func (p *acctPlan) reset() {
	clear(p.expEntries)
	clear(p.firsts)
	*p = acctPlan{expEntries: p.expEntries[:0], firsts: p.firsts[:0], newUnits: p.newUnits[:0]}
}

// plan fills p with the expectations of a call adding accts (Σ units
// total) with windowLimit and the block share's sequence block ("": none),
// computed as acctScript computes them, and sets p.ok; it leaves p.ok false
// when the cache knows too little, the script would trim the window (its
// walk over the sealed slices is not predicted), or a number is outside
// what lode computes exactly as the script does.
func (c *acctCache) plan(p *acctPlan, accts []addrUnits, total units, windowLimit, block string) {
	p.batch = total
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.skip > 0 {
		c.skip--
		p.noState = true
		return
	}
	if !c.known || len(accts) > maxExpectAddrs {
		return
	}
	if !small(total) {
		return
	}
	// The limit: as the script's "limit, newLimit".
	limit := windowLimit
	if limit == "0" {
		limit = c.limit
	} else if c.limit != limit {
		p.setLimit = limit
	}
	limited := limit != "" && limit != "0"
	var lim units
	if limited {
		var ok bool
		if lim, ok = expectUnits(limit); !ok {
			return
		}
	}
	// Entries: the batch's units added to each address's.
	for i := range accts {
		ac := &accts[i]
		if !small(ac.units) {
			return
		}
		e, have := c.entries[ac.address]
		if !have && !c.complete {
			return
		}
		first, u := "", ac.units
		if have {
			f, eu, ok := splitEntry(e)
			if !ok {
				return
			}
			first = f
			u.add(eu)
		}
		p.expEntries = append(p.expEntries, e)
		p.firsts = append(p.firsts, first)
		p.newUnits = append(p.newUnits, u)
	}
	t, r, cu := c.total, c.round, c.cur
	t.add(total)
	r.add(total)
	cu.add(total)
	id, old, hasOld := c.id, c.oldest, c.hasOld
	seal := block != "" || !limited
	if !seal {
		seal = !cu.times80().less(lim) // 80 × the open slice's units ≥ L
	}
	if seal {
		p.seal, p.sealID, p.sealUnits, p.block = true, id, cu, block
		if !hasOld {
			old, hasOld = cu, true
		}
		id, cu = id+1, units{}
	}
	if limited && hasOld {
		// The script drops the oldest slice while the window without it
		// still reaches L: T − O ≥ L.
		lo := lim
		lo.add(old)
		if !t.less(lo) {
			return
		}
	}
	p.expCur, p.expTotal, p.expRound, p.expLimit = c.curS, c.totalS, c.roundS, c.limit
	p.nextID, p.nextCur, p.nextOld, p.nextHasOld, p.nextTotal, p.nextRound = id, cu, old, hasOld, t, r
	p.nextLimit = c.limit
	if p.setLimit != "" {
		p.nextLimit = p.setLimit
	}
	p.ok = true
}

// appendPlan appends p's ARGV 7-16 to a (acctScript), or ARGV 7 "" or "-"
// for a call without expectations.
func (a *scriptArgs) appendPlan(p *acctPlan) {
	if !p.ok {
		if p.noState {
			a.str("-")
		} else {
			a.str("")
		}
		return
	}
	a.str(p.expCur)
	a.str(p.expTotal)
	a.str(p.expRound)
	a.str(p.expLimit)
	id := p.nextID
	if p.seal {
		id = p.sealID
	}
	a.int(id) // the open slice the entries go to
	a.buf = strconv.AppendInt(a.buf, p.nextID, 10)
	a.buf = append(a.buf, '|')
	a.buf = p.nextCur.append(a.buf)
	a.buf = append(a.buf, '|')
	if p.nextHasOld {
		a.buf = p.nextOld.append(a.buf)
	}
	a.ends = append(a.ends, len(a.buf))
	a.buf = p.nextTotal.append(a.buf)
	a.ends = append(a.ends, len(a.buf))
	a.buf = p.nextRound.append(a.buf)
	a.ends = append(a.ends, len(a.buf))
	a.str(p.setLimit)
	if p.seal {
		a.buf = strconv.AppendInt(a.buf, p.sealID, 10)
		a.buf = append(a.buf, '|')
		a.buf = p.sealUnits.append(a.buf)
		a.buf = append(a.buf, '|')
		a.buf = append(a.buf, p.block...)
	}
	a.ends = append(a.ends, len(a.buf))
}

// appendPlanEntries appends p's per-address expected and new entries (after
// the addresses) for a batch of instance.
func (a *scriptArgs) appendPlanEntries(p *acctPlan, instance string) {
	if !p.ok {
		return
	}
	for i := range a.accts {
		ac := &a.accts[i]
		a.str(p.expEntries[i])
		if p.expEntries[i] != "" {
			a.buf = append(a.buf, p.firsts[i]...)
		} else {
			a.buf = appendSeq(a.buf, instance, ac.first)
		}
		a.buf = append(a.buf, '|')
		a.buf = appendSeq(a.buf, instance, ac.last)
		a.buf = append(a.buf, '|')
		a.buf = p.newUnits[i].append(a.buf)
		a.ends = append(a.ends, len(a.buf))
	}
}

// Positions (0-based, in scriptArgs.vals) of what commit keeps of a call
// with expectations: the new open slice, totals, and the first address.
const (
	planCurArg   = 11
	planFirstArg = 16
)

// commit records the outcome of the call a built (a.acctPlan.ok: it carried
// expectations): res is the script's reply, err the call's error.
func (c *acctCache) commit(a *scriptArgs, res *redis.Cmd, err error) {
	p, accts := &a.acctPlan, a.accts
	c.mu.Lock()
	defer c.mu.Unlock()
	var vals []any
	if err == nil && res != nil {
		vals, _ = res.Val().([]any)
	}
	switch {
	case len(vals) == 3 && vals[2] == int64(1) && p.ok: // expectations met
		c.misses = 0
		c.hits++
		c.id, c.cur, c.oldest, c.hasOld = p.nextID, p.nextCur, p.nextOld, p.nextHasOld
		c.total, c.round, c.limit = p.nextTotal, p.nextRound, p.nextLimit
		// The values are substrings of the call's arguments: kept as they
		// are for a small batch, copied for a large one (whose entries
		// would keep its whole arguments alive).
		keep := func(s string) string {
			if len(accts) > 8 {
				return strings.Clone(s)
			}
			return s
		}
		c.curS, c.totalS, c.roundS = keep(a.vals[planCurArg]), keep(a.vals[planCurArg+1]), keep(a.vals[planCurArg+2])
		if p.seal {
			c.newSlice(true)
		} else {
			e := planFirstArg + 4*len(accts) + 1
			for i := range accts {
				c.entries[accts[i].address] = keep(a.vals[e+2*i])
			}
			c.bound()
		}
	case len(vals) >= 8 && vals[2] == int64(0): // computed: it returns what it wrote
		if c.known {
			// Another writer since this Store's last call (or a trim)?
			want := c.total
			want.add(p.batch)
			got, ok := vals[4].(string)
			if u, okU := expectUnits(got); !ok || !okU || u != want {
				c.misses++
				if c.misses >= acctMissLimit {
					c.misses, c.skip = 0, acctMissSkip
				}
			}
		}
		c.load(vals, accts)
	default: // applied before, no state asked for, an error, or a reply not understood
		c.forget()
	}
}

// load sets the cache from a computed call's reply (acctScript: open slice,
// totals, stored limit, the id of the slice the entries went to, entries).
func (c *acctCache) load(vals []any, accts []addrUnits) {
	str := func(i int) (string, bool) {
		s, ok := vals[i].(string)
		return s, ok
	}
	curS, ok1 := str(3)
	totalS, ok2 := str(4)
	roundS, ok3 := str(5)
	limit, ok4 := str(6)
	widS, ok5 := str(7)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		c.forget()
		return
	}
	idS, rest, _ := strings.Cut(curS, "|")
	curU, oldS, ok6 := strings.Cut(rest, "|")
	id, ok7 := expectID(idS)
	cur, ok8 := expectUnits(curU)
	total, ok9 := expectUnits(totalS)
	round, ok10 := expectUnits(roundS)
	var old units
	hasOld, ok11 := oldS != "", true
	if hasOld {
		old, ok11 = expectUnits(oldS)
	}
	if !ok6 || !ok7 || !ok8 || !ok9 || !ok10 || !ok11 {
		c.forget()
		return
	}
	same := c.known && c.id == id
	c.known = true
	c.id, c.cur, c.oldest, c.hasOld, c.total, c.round, c.limit = id, cur, old, hasOld, total, round, limit
	c.curS, c.totalS, c.roundS = curS, totalS, roundS
	if widS != strconv.FormatInt(id, 10) {
		// The batch sealed the slice its entries went to: the open one
		// is new and empty.
		c.newSlice(true)
		return
	}
	if !same {
		c.newSlice(false)
	}
	if len(vals) == 8+len(accts) {
		for i := range accts {
			if e, ok := vals[8+i].(string); ok {
				c.entries[accts[i].address] = e
			}
		}
	}
	c.bound()
}

// bound forgets the open slice's entries once they are more than
// maxExpectEntries (the addresses of a batch are then expected only once
// the script returned their entries again).
func (c *acctCache) bound() {
	if len(c.entries) > maxExpectEntries {
		c.newSlice(false)
	}
}

// newSlice forgets the entries (a new open slice); complete: it is known to
// be empty.
func (c *acctCache) newSlice(complete bool) {
	if c.entries == nil || len(c.entries) > 0 {
		c.entries = make(map[string]string)
	}
	c.complete = complete
}

// forget drops what the cache knows.
func (c *acctCache) forget() {
	c.known = false
	c.entries, c.complete = nil, false
}

// small reports whether u is below 10^maxExpectDigits.
func small(u units) bool { return u.hi < 1_000_000 }

// expectUnits parses a stored units value the way lode expects values: a
// canonical decimal (no sign, no leading zeros) below 10^24. Other values
// (which the script might read differently) are not expected.
func expectUnits(s string) (units, bool) {
	if s == "" || len(s) > maxExpectDigits || (s[0] == '0' && len(s) > 1) {
		return units{}, false
	}
	u, err := parseUnits(s)
	return u, err == nil
}

// expectID parses a slice id: canonical, 1 ≤ id < 10^13 (the script
// formats ids as Lua numbers, exact integers far beyond that).
func expectID(s string) (int64, bool) {
	if s == "" || len(s) > 13 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// splitEntry splits a slice entry "first|last|units" as the script does
// ('^([^|]*)|[^|]*|(%d+)$'): the first share's sequence and the units,
// which must be an expected value (expectUnits).
func splitEntry(e string) (string, units, bool) {
	i := strings.IndexByte(e, '|')
	j := strings.LastIndexByte(e, '|')
	if i < 0 || j <= i || strings.IndexByte(e[i+1:j], '|') >= 0 {
		return "", units{}, false
	}
	u, ok := expectUnits(e[j+1:])
	return e[:i], u, ok
}

// seqString is a share's sequence as the accounting script stores it,
// "instance:counter".
func seqString(instance string, seq uint64) string {
	return string(appendSeq(nil, instance, seq))
}

// appendSeq appends seqString(instance, seq) to dst.
func appendSeq(dst []byte, instance string, seq uint64) []byte {
	dst = append(dst, instance...)
	dst = append(dst, ':')
	return strconv.AppendUint(dst, seq, 10)
}

// less reports u < v.
func (u units) less(v units) bool { return u.hi < v.hi || u.hi == v.hi && u.lo < v.lo }

// times80 returns 80 × u (u below 10^24: no overflow).
func (u units) times80() units {
	h, l := bits.Mul64(u.lo, 80)
	q, r := bits.Div64(h, l, unitsBase)
	return units{hi: u.hi*80 + q, lo: r}
}
