package shares

// dupSet is the duplicate filter of one job in one session: the set of
// accepted share hashes, keyed by their low 128 bits (the part of a share
// hash that is uniformly random; 2^-128 collisions cannot happen by chance,
// and the key covers extranonce2, ntime, nonce and version through the hash).
//
// It is an open-addressing table with linear probing indexed by the key's
// low bits, which are already uniformly distributed, so there is no hash
// function to run. reset keeps the table's capacity for the next job.
type dupSet struct {
	slots   [][2]uint64 // zero = empty
	n       int
	hasZero bool // the all-zero key, which cannot live in slots
}

const dupInitialSlots = 64

// insert adds k and reports whether it was already present.
func (d *dupSet) insert(k [2]uint64) bool {
	if k == ([2]uint64{}) {
		dup := d.hasZero
		d.hasZero = true
		return dup
	}
	if 2*(d.n+1) > len(d.slots) {
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

// reset empties the set, keeping its capacity.
func (d *dupSet) reset() {
	clear(d.slots)
	d.n = 0
	d.hasZero = false
}
