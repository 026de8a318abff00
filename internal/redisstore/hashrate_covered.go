package redisstore

import "time"

// minCovered is the shortest time a hashrate is averaged over: a share in
// the first seconds would otherwise read as an enormous rate.
const minCovered = 60.0 // seconds

// coveredSeconds is how long each hashrate window (10 min, 1 h, 24 h)
// actually covers: from the first share the buckets show (the start of the
// oldest non-empty bucket: a 10-minute slot, or, when that slot lies within
// the last hour, the finer minute bucket) to now, at least minCovered and
// at most the window. oldestMinute and oldestSlot are the ages (0: current)
// of the oldest non-empty minute bucket and 10-minute slot, -1 when none.
// The statistics keep no first-seen time, so activity that began before
// the 24 h of slots counts from their start: a steady miner's figures are
// the plain window averages (Σ / 600 s, 3600 s, 86400 s).
func coveredSeconds(now time.Time, oldestMinute, oldestSlot int) (c10, c60, c1440 float64) {
	c10, c60, c1440 = 600, 3600, 86400
	if oldestMinute < 0 && oldestSlot < 0 {
		return c10, c60, c1440 // no shares: 0 over any span
	}
	nowSec := float64(now.UnixNano()) / 1e9
	minuteStart := func(age int) float64 { return float64((now.Unix()/60 - int64(age)) * 60) }
	start := nowSec - 86400
	if oldestSlot >= 0 {
		start = float64((now.Unix()/slotSeconds - int64(oldestSlot)) * slotSeconds)
	}
	if oldestMinute >= 0 && (oldestSlot < 0 || start >= minuteStart(59)) {
		start = max(start, minuteStart(oldestMinute))
	}
	slotStart := func(age int) float64 { return float64((now.Unix()/slotSeconds - int64(age)) * slotSeconds) }
	// A window whose oldest bucket holds shares (or older ones do) is
	// covered whole: the plain average, as before.
	span := func(window, oldestBucket float64) float64 {
		if start <= oldestBucket {
			return window
		}
		return min(max(nowSec-start, minCovered), window)
	}
	return span(600, minuteStart(9)), span(3600, minuteStart(59)), span(86400, slotStart(daySlots-1))
}
