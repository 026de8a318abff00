package redisstore

import (
	"math"
	"testing"
	"time"
)

// Issue 15: a pool that has run 5 minutes showed a 24 h hashrate of a
// 288th of its rate (Σ work / 24 h). Each window now divides by the time
// it covers since the first share the buckets hold.
func TestCoveredSeconds(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 34, 30, 0, time.UTC) // 30 s into a minute, 4.5 min into a slot
	minuteStart := func(age int) float64 { return float64((now.Unix()/60 - int64(age)) * 60) }
	slotStart := func(age int) float64 { return float64((now.Unix()/slotSeconds - int64(age)) * slotSeconds) }
	nowS := float64(now.Unix())
	for _, tc := range []struct {
		name                   string
		oldestMinute, oldSlot  int
		want10, want60, want24 float64
	}{
		{"no shares", -1, -1, 600, 3600, 86400},
		{"first share this minute", 0, 0, 60, 60, 60},
		{"started 5 minutes ago", 5, 1, nowS - minuteStart(5), nowS - minuteStart(5), nowS - minuteStart(5)},
		{"started 40 minutes ago", 40, 4, 600, nowS - minuteStart(40), nowS - minuteStart(40)},
		{"started 3 hours ago", 59, 18, 600, 3600, nowS - slotStart(18)},
		{"a steady miner", 59, 143, 600, 3600, 86400},
		{"only an old share", -1, 100, 600, 3600, nowS - slotStart(100)},
	} {
		c10, c60, c24 := coveredSeconds(now, tc.oldestMinute, tc.oldSlot)
		for _, f := range []struct {
			w         string
			got, want float64
		}{{"10m", c10, tc.want10}, {"1h", c60, tc.want60}, {"24h", c24, tc.want24}} {
			if math.Abs(f.got-f.want) > 1e-6 {
				t.Errorf("%s: %s covers %v s, want %v", tc.name, f.w, f.got, f.want)
			}
		}
	}
}
