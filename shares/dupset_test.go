package shares

import "testing"

// A table grown by a busy job is kept for the next job while jobs stay busy,
// and dropped back to the small start once a job uses little of it, so an
// idle-ish connection does not hold a large filter.
func TestDupSetShrinksAfterQuietJob(t *testing.T) {
	var d dupSet
	fill := func(n int) {
		for i := range n {
			d.insert([2]uint64{uint64(i)*0x9e3779b97f4a7c15 + 1, uint64(i)})
		}
	}
	fill(1000)
	grown := len(d.slots)
	if grown < 1024 {
		t.Fatalf("1000 keys in %d slots", grown)
	}
	d.reset()
	if len(d.slots) != grown {
		t.Fatalf("busy job: reset left %d slots, want %d kept", len(d.slots), grown)
	}
	fill(3) // a quiet job
	d.reset()
	if len(d.slots) != 0 {
		t.Fatalf("quiet job: reset kept %d slots", len(d.slots))
	}
	fill(3)
	if len(d.slots) != dupInitialSlots || d.len() != 3 {
		t.Fatalf("after shrink: %d slots, %d keys", len(d.slots), d.len())
	}
}
