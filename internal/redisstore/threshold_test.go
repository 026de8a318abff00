package redisstore_test

import (
	"context"
	"testing"
)

// The store refuses a threshold payment.CheckThreshold refuses, whichever
// writer (admin API, lodectl) asks (issue 10 item 10).
func TestSetThresholdAppliesTheRule(t *testing.T) {
	s, _ := shareStore(t)
	ctx := context.Background()
	for _, bad := range []int64{5, 9_999, -1} {
		if err := s.SetThreshold(ctx, "bcrt1qx", bad); err == nil {
			t.Errorf("SetThreshold(%d) accepted", bad)
		}
	}
	if err := s.SetThreshold(ctx, "bcrt1qx", 10_000); err != nil {
		t.Fatal(err)
	}
	th, err := s.Thresholds(ctx)
	if err != nil || th["bcrt1qx"] != 10_000 || len(th) != 1 {
		t.Fatalf("thresholds %v, %v", th, err)
	}
	if err := s.SetThreshold(ctx, "bcrt1qx", 0); err != nil {
		t.Fatal(err)
	}
	if th, _ := s.Thresholds(ctx); len(th) != 0 {
		t.Fatalf("after removing the override: %v", th)
	}
}
