package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/redisstore"
)

// Recent-share entries are "unixms|worker|difficulty|hash difficulty".
// Worker names are refused at authorize when they hold '|' now, but entries
// written before that rule may: the name is everything between the first
// and the last two separators, so such an entry is read whole instead of
// being dropped (issue 10 item 6).
func TestRecentSharesWithSeparatorInWorkerName(t *testing.T) {
	s, rdb := shareStore(t)
	ctx := context.Background()
	key := "t:" + redisstore.StatsShardTag("bc1qlegacy") + ":recent:bc1qlegacy"
	entries := []string{
		"1700000000000|plain|1024|2048.5",
		"1700000000001|a|b||c|512|777",
		"1700000000002||8|9",
		"1700000000003|esc\x1b[31m\n|16|32",
		"garbage",
		"1700000000004|x|notanumber|1",
	}
	if err := rdb.RPush(ctx, key, entries).Err(); err != nil {
		t.Fatal(err)
	}
	ms, err := s.MinerStats(ctx, "bc1qlegacy", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		ms         int64
		name       string
		diff, hash float64
	}{
		{1700000000000, "plain", 1024, 2048.5},
		{1700000000001, "a|b||c", 512, 777},
		{1700000000002, "", 8, 9},
		{1700000000003, "esc\x1b[31m\n", 16, 32},
	}
	if len(ms.Recent) != len(want) {
		t.Fatalf("read %d recent shares %+v, want %d", len(ms.Recent), ms.Recent, len(want))
	}
	for i, w := range want {
		r := ms.Recent[i]
		if r.Time.UnixMilli() != w.ms || r.WorkerName != w.name || r.Difficulty != w.diff || r.HashDifficulty != w.hash {
			t.Errorf("entry %d = %+v, want %+v", i, r, w)
		}
	}
}
