package shares

// dupSet is the duplicate filter of one job in one session: the set of
// accepted share hashes, keyed by their low 128 bits (the part of a share
// hash that is uniformly random; 2^-128 collisions cannot happen by chance,
// and the key covers extranonce2, ntime, nonce and version through the hash).
//
// It is an open-addressing table with linear probing indexed by the key's
// low bits, which are already uniformly distributed, so there is no hash
// function to run. The table starts small (a miner submitting every few
// seconds holds a handful of shares per job, and every active connection
// pays for its tables) and doubles at 3/4 full; keys are uniformly random, so
// linear probing stays short at that load. reset keeps the capacity for the
// next job unless the job used little of it.
type dupSet struct {
	slots   [][2]uint64 // zero = empty
	n       int
	hasZero bool // the all-zero key, which cannot live in slots
}

const dupInitialSlots = 16

// insert adds k and reports whether it was already present.
func (d *dupSet) insert(k [2]uint64) bool {
	if k == ([2]uint64{}) {
		dup := d.hasZero
		d.hasZero = true
		return dup
	}
	if 4*(d.n+1) > 3*len(d.slots) {
		d.grow()
	}
	mask := uint64(len(d.slots) - 1)
	for i := k[0] & mask; ; i = (i + 1) & mask {
		switch d.slots[i] {
		case k:
			return true
		case [2]uint64{}:
			d.slots[i] = k
			d.n++
			return false
		}
	}
}

// contains reports whether k is in the set.
func (d *dupSet) contains(k [2]uint64) bool {
	if k == ([2]uint64{}) {
		return d.hasZero
	}
	if len(d.slots) == 0 {
		return false
	}
	mask := uint64(len(d.slots) - 1)
	for i := k[0] & mask; ; i = (i + 1) & mask {
		switch d.slots[i] {
		case k:
			return true
		case [2]uint64{}:
			return false
		}
	}
}

func (d *dupSet) grow() {
	old := d.slots
	size := 2 * len(old)
	if size == 0 {
		size = dupInitialSlots
	}
	d.slots = make([][2]uint64, size)
	mask := uint64(size - 1)
	for _, k := range old {
		if k == ([2]uint64{}) {
			continue
		}
		i := k[0] & mask
		for d.slots[i] != ([2]uint64{}) {
			i = (i + 1) & mask
		}
		d.slots[i] = k
	}
}

// len returns the number of keys.
func (d *dupSet) len() int {
	if d.hasZero {
		return d.n + 1
	}
	return d.n
}

// reset empties the set. It keeps the capacity (a fast connection's next job
// needs as much, without allocating) unless the job filled less than an
// eighth of a grown table: then the next job starts small again.
func (d *dupSet) reset() {
	if len(d.slots) > dupInitialSlots && 8*d.n < len(d.slots) {
		d.slots = nil
	}
	clear(d.slots)
	d.n = 0
	d.hasZero = false
}
