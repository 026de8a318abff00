package redisstore_test

import (
	"context"
	"testing"
	"time"
)

func TestLeaseExclusive(t *testing.T) {
	s, rdb := shareStore(t)
	ctx := context.Background()
	a, err := s.Lease("payouts", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Lease("payouts", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a.Token() == b.Token() {
		t.Fatal("two leases share an owner token")
	}
	steps := []struct {
		name string
		do   func() (bool, error)
		want bool
	}{
		{"a acquires a free lease", func() (bool, error) { return a.Acquire(ctx) }, true},
		{"b cannot acquire a held lease", func() (bool, error) { return b.Acquire(ctx) }, false},
		{"a acquires again (lost reply retry)", func() (bool, error) { return a.Acquire(ctx) }, true},
		{"a renews", func() (bool, error) { return a.Renew(ctx) }, true},
		{"b cannot renew a's lease", func() (bool, error) { return b.Renew(ctx) }, false},
		{"b's release leaves a's lease", func() (bool, error) {
			if err := b.Release(ctx); err != nil {
				return false, err
			}
			h, err := s.LeaseHolder(ctx, "payouts")
			return h == a.Token(), err
		}, true},
		{"a releases", func() (bool, error) {
			if err := a.Release(ctx); err != nil {
				return false, err
			}
			h, err := s.LeaseHolder(ctx, "payouts")
			return h == "", err
		}, true},
		{"a cannot renew a released lease", func() (bool, error) { return a.Renew(ctx) }, false},
		{"b acquires the released lease", func() (bool, error) { return b.Acquire(ctx) }, true},
		{"a cannot acquire b's lease", func() (bool, error) { return a.Acquire(ctx) }, false},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Fatalf("%s: got %v, want %v", st.name, got, st.want)
		}
	}
	// Roles are independent keys under the prefix.
	u, _ := s.Lease("unlocker", time.Minute)
	if ok, err := u.Acquire(ctx); err != nil || !ok {
		t.Fatalf("unlocker lease: %v %v", ok, err)
	}
	if n, err := rdb.Exists(ctx, "t:lease:payouts", "t:lease:unlocker").Result(); err != nil || n != 2 {
		t.Fatalf("lease keys: %d %v", n, err)
	}
	if pttl := rdb.PTTL(ctx, "t:lease:unlocker").Val(); pttl <= 0 || pttl > time.Minute {
		t.Fatalf("lease key expiry %v, want (0, 1m]", pttl)
	}
}

// A holder that stops renewing (a killed process) loses the lease when the
// key expires, and cannot renew it once another process took it.
func TestLeaseExpires(t *testing.T) {
	s, _ := shareStore(t)
	ctx := context.Background()
	a, _ := s.Lease("unlocker", 100*time.Millisecond)
	b, _ := s.Lease("unlocker", time.Minute)
	if ok, err := a.Acquire(ctx); err != nil || !ok {
		t.Fatalf("a acquire: %v %v", ok, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := b.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lease never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, err := a.Renew(ctx); err != nil || ok {
		t.Fatalf("a renewed b's lease: %v %v", ok, err)
	}
	if h, _ := s.LeaseHolder(ctx, "unlocker"); h != b.Token() {
		t.Fatalf("holder %q, want b", h)
	}
}

func TestLeaseConfigErrors(t *testing.T) {
	s, _ := shareStore(t)
	for _, tc := range []struct {
		name string
		role string
		ttl  time.Duration
	}{
		{"empty role", "", time.Second},
		{"zero ttl", "payouts", 0},
		{"sub-millisecond ttl", "payouts", time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Lease(tc.role, tc.ttl); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
