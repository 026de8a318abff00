package redisstore

import "strconv"

// Keys of the PPLNS window (owner: the share ledger's accounting script and
// the block snapshot, through shares.go and blocks_window.go). The window is
// a sequence of slices, each holding one entry per payout address; schema in
// docs/redis.md, "The PPLNS window". All carry the {acct} tag: the
// accounting script and the snapshot touch them with the round and block
// keys.

// windowKeys are the window's fixed key names, built once per Store (the
// accounting script names them on every group commit).
type windowKeys struct {
	cur    string // string "id|units|oldest units": the open slice, and the oldest sealed slice's units
	total  string // Σ units of the live window (sealed slices and the open one), decimal
	limit  string // the limit L = 1.25 N the window was last trimmed to
	slices string // list of the live sealed slices, newest first: "id|units|seal"
	pins   string // zset: block hash → oldest slice id its window uses
	gc     string // the lowest slice id whose keys may still exist
	slice  string // prefix of a slice's keys: slice + id, slice + id + ":order"
}

func newWindowKeys(s *Store) windowKeys {
	return windowKeys{
		cur:    s.key(acctTag, "pplns", "cur"),
		total:  s.key(acctTag, "pplns", "total"),
		limit:  s.key(acctTag, "pplns", "limit"),
		slices: s.key(acctTag, "pplns", "slices"),
		pins:   s.key(acctTag, "pplns", "pins"),
		gc:     s.key(acctTag, "pplns", "gc"),
		slice:  s.key(acctTag, "pplns", "s") + ":",
	}
}

// sliceKey is slice id's hash: payout address → "first|last|units".
func (s *Store) sliceKey(id int64) string { return s.win.slice + strconv.FormatInt(id, 10) }

// sliceOrderKey is slice id's list of addresses in the order of their first
// share in the slice.
func (s *Store) sliceOrderKey(id int64) string { return s.sliceKey(id) + ":order" }
