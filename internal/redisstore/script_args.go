package redisstore

import (
	"strconv"
	"sync"
)

// scriptArgs builds the KEYS and ARGV of one share-batch script call with few
// allocations, because a paced pool writes a batch per share and every
// allocation there is garbage an active connection's RSS carries:
//   - each ARGV value is appended as text to one buffer; args turns the buffer
//     into one string and the values into substrings of it (one allocation
//     for all of them);
//   - go-redis writes a *string argument like a string, and boxing a pointer
//     in an interface does not allocate, so ARGV and KEYS go to go-redis as
//     pointers into vals and keys;
//   - keys are deduplicated through index without allocating for a key seen
//     before.
//
// A scriptArgs is reused through scriptArgsPool; what args returns is valid
// until the scriptArgs is put back.
type scriptArgs struct {
	keys  []string
	index map[string]int // key → its 1-based position in KEYS
	kb    []byte         // the key being built
	buf   []byte         // ARGV values, concatenated
	ends  []int          // end offset in buf of each ARGV value
	vals  []string       // ARGV values, substrings of string(buf)
	cmd   []any

	// Scratch of acctOps: the batch per address, and the call's
	// expectations (acctCache).
	accts    []addrUnits
	aIndex   map[string]int
	acctPlan acctPlan

	// Scratch of statsOps (kept here so it is reused too).
	expired []bool // by key position: an EXPIRE is queued for the key
	workers []workerAgg
	wIndex  map[string]int
	hr      []hrBucket
	hrIndex map[hrKey]int
	recent  []recentGroup
	rIndex  map[string]int
	miners  []recentGroup // an address's workers
	mIndex  map[string]int
	hgroups []hrGroup
	hgIndex map[hrGroupKey]int
	// What the Store's statsCache learns once the calls are applied: the
	// keys given an EXPIRE and the workers' best difficulties.
	setTTL []string
	bests  []workerBest
	hrw    []hrWritten
	// calls are the statistics script calls statsOps builds, by shard
	// (index statsShards: the pool-wide keys); released with a.
	calls [statsShards + 1]*scriptArgs

	// The keys every batch of one store and instance names, kept across
	// uses (release does not clear them).
	fixedPrefix, fixedInstance string
	fixed                      [8]string
	// The statistics applied keys by shard, kept the same way.
	appliedPrefix, appliedInstance string
	applied                        [statsShards + 1]string
}

var scriptArgsPool = sync.Pool{New: func() any {
	return &scriptArgs{index: map[string]int{}, wIndex: map[string]int{}, hrIndex: map[hrKey]int{}, rIndex: map[string]int{},
		mIndex: map[string]int{}, hgIndex: map[hrGroupKey]int{}, aIndex: map[string]int{}}
}}

func getScriptArgs() *scriptArgs { return scriptArgsPool.Get().(*scriptArgs) }

// release clears a and puts it back in the pool. Very large batches (a spool
// replay of full batches) leave large buffers; those are dropped rather than
// kept for the one-share batches of a paced pool.
func (a *scriptArgs) release() {
	for i, c := range a.calls {
		if c != nil {
			c.release()
			a.calls[i] = nil
		}
	}
	if cap(a.buf) > 1<<20 || cap(a.keys) > 1<<14 {
		return
	}
	clear(a.keys)
	a.keys = a.keys[:0]
	clear(a.index)
	a.buf, a.ends = a.buf[:0], a.ends[:0]
	clear(a.vals)
	a.vals = a.vals[:0]
	clear(a.cmd)
	a.cmd = a.cmd[:0]
	a.expired = a.expired[:0]
	clear(a.accts)
	a.accts = a.accts[:0]
	clear(a.aIndex)
	a.acctPlan.reset()
	clear(a.workers)
	a.workers = a.workers[:0]
	clear(a.wIndex)
	clear(a.hr)
	a.hr = a.hr[:0]
	clear(a.hrIndex)
	for i := range a.recent {
		a.recent[i].address = ""
		a.recent[i].shares = a.recent[i].shares[:0]
	}
	a.recent = a.recent[:0]
	clear(a.rIndex)
	for i := range a.miners {
		a.miners[i].address = ""
		a.miners[i].shares = a.miners[i].shares[:0]
	}
	a.miners = a.miners[:0]
	clear(a.mIndex)
	for i := range a.hgroups {
		a.hgroups[i].idx = a.hgroups[i].idx[:0]
	}
	a.hgroups = a.hgroups[:0]
	clear(a.hgIndex)
	clear(a.setTTL)
	a.setTTL = a.setTTL[:0]
	clear(a.bests)
	a.bests = a.bests[:0]
	clear(a.hrw)
	a.hrw = a.hrw[:0]
	scriptArgsPool.Put(a)
}

// keyStart begins building a key: prefix ":" tag ":" name.
func (a *scriptArgs) keyStart(prefix, tag, name string) *scriptArgs {
	a.kb = append(a.kb[:0], prefix...)
	a.kb = append(a.kb, ':')
	a.kb = append(a.kb, tag...)
	a.kb = append(a.kb, ':')
	a.kb = append(a.kb, name...)
	return a
}

// keyPart appends ":" part to the key being built.
func (a *scriptArgs) keyPart(part string) *scriptArgs {
	a.kb = append(a.kb, ':')
	a.kb = append(a.kb, part...)
	return a
}

// keyInt appends ":" n to the key being built.
func (a *scriptArgs) keyInt(n int64) *scriptArgs {
	a.kb = append(a.kb, ':')
	a.kb = strconv.AppendInt(a.kb, n, 10)
	return a
}

// keyDone returns the KEYS position of the key built, adding it if new.
func (a *scriptArgs) keyDone() int {
	if i, ok := a.index[string(a.kb)]; ok {
		return i
	}
	return a.addKey(string(a.kb))
}

// addKey returns the KEYS position of key, adding it if new.
func (a *scriptArgs) addKey(key string) int {
	if i, ok := a.index[key]; ok {
		return i
	}
	a.keys = append(a.keys, key)
	a.expired = append(a.expired, false)
	i := len(a.keys)
	a.index[key] = i
	return i
}

// str appends one ARGV value.
func (a *scriptArgs) str(v string) {
	a.buf = append(a.buf, v...)
	a.ends = append(a.ends, len(a.buf))
}

// str2 appends the ARGV value x + y.
func (a *scriptArgs) str2(x, y string) {
	a.buf = append(a.buf, x...)
	a.buf = append(a.buf, y...)
	a.ends = append(a.ends, len(a.buf))
}

// int appends n as one ARGV value.
func (a *scriptArgs) int(n int64) {
	a.buf = strconv.AppendInt(a.buf, n, 10)
	a.ends = append(a.ends, len(a.buf))
}

// float appends f as one ARGV value in strconv format fmt, shortest form.
func (a *scriptArgs) float(f float64, fmt byte) {
	a.buf = strconv.AppendFloat(a.buf, f, fmt, -1, 64)
	a.ends = append(a.ends, len(a.buf))
}

// op appends one statistics operation on KEYS[key]: name, key, field (the
// value follows).
func (a *scriptArgs) op(name string, key int, field string) {
	a.str(name)
	a.int(int64(key))
	a.str(field)
}

// multi starts a multi-field statistics operation on KEYS[key] with n
// field/value pairs (which follow).
func (a *scriptArgs) multi(name string, key, n int) {
	a.str(name)
	a.int(int64(key))
	a.int(int64(n))
}

// expireIn appends an EXPIRE of KEYS[key] in seconds, once per key.
func (a *scriptArgs) expireIn(key int, seconds int64) {
	if !a.expired[key-1] {
		a.expired[key-1] = true
		a.op("expire", key, "")
		a.int(seconds)
	}
}

// seq appends a batch sequence number as 20 digits, so that string order
// is numeric order inside Lua (whose numbers would round values above 2^53).
func (a *scriptArgs) seq(seq uint64) {
	var d [20]byte
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + seq%10)
		seq /= 10
	}
	a.buf = append(a.buf, d[:]...)
	a.ends = append(a.ends, len(a.buf))
}

// command returns the EVALSHA sha command of KEYS and ARGV for Client.Do
// (where Script.EvalSha would copy ARGV and box every key again), and the
// KEYS and ARGV parts of it.
func (a *scriptArgs) command(sha string) (cmd []any, keys []string, argv []any) {
	all := string(a.buf)
	start := 0
	for _, end := range a.ends {
		a.vals = append(a.vals, all[start:end])
		start = end
	}
	a.cmd = append(a.cmd, "evalsha", sha, len(a.keys))
	for i := range a.keys {
		a.cmd = append(a.cmd, &a.keys[i])
	}
	for i := range a.vals {
		a.cmd = append(a.cmd, &a.vals[i])
	}
	return a.cmd, a.keys, a.cmd[3+len(a.keys):]
}
