package redisstore

import (
	"fmt"
	"testing"
)

// TestStatsShardTags: shard i's tag is "{stats:n}" with n the smallest
// integer whose Cluster slot lies in the i-th 32nd of the slot space (the
// rule docs/redis.md states), so the shards spread evenly over any cluster
// that splits the slots in equal ranges; clusterSlot is Redis's CRC16.
func TestStatsShardTags(t *testing.T) {
	if got := clusterSlot("123456789"); got != 0x31c3%16384 {
		t.Fatalf("clusterSlot(123456789) = %d, want CRC16-XMODEM 0x31c3 mod 16384", got)
	}
	width := 16384 / statsShards
	for i, tag := range statsShardTags {
		want := ""
		for n := 0; want == ""; n++ {
			if clusterSlot(fmt.Sprintf("stats:%d", n))/width == i {
				want = fmt.Sprintf("{stats:%d}", n)
			}
		}
		if tag != want {
			t.Errorf("shard %d: tag %s, want %s", i, tag, want)
		}
	}
	for _, tc := range []struct {
		name string
		want int
	}{
		// FNV-1a, fixed: a change moves every worker's statistics.
		{"", 2166136261 % statsShards},
		{"bc1qminer", 1776272387 % statsShards},
		{"bc1qminer.a", 631157890 % statsShards},
	} {
		if got := statsShard(tc.name); got != tc.want {
			t.Errorf("statsShard(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
	seen := map[int]bool{}
	for i := range 1000 {
		seen[statsShard(fmt.Sprintf("bc1qaddr%d.rig", i))] = true
	}
	if len(seen) != statsShards {
		t.Errorf("1000 workers fell into %d of %d shards", len(seen), statsShards)
	}
}
