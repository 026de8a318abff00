package lease_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/internal/lease"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
)

const wait = 20 * time.Second // bound on every wait for an event

func newStore(t *testing.T) (*redisstore.Store, *redis.Client) {
	t.Helper()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return redisstore.New(rdb, redisstore.Config{Prefix: "t"}), rdb
}

// countedLock is the real Redis lease with its calls counted, and errors
// injectable (Redis unreachable for this process only: a partition the test
// cannot provoke with one redis-server shared by both contenders).
type countedLock struct {
	*redisstore.Lease
	acquires atomic.Int64
	renews   atomic.Int64
	cutOff   atomic.Bool
}

var errCutOff = errors.New("injected: redis unreachable")

func (c *countedLock) Acquire(ctx context.Context) (bool, error) {
	defer c.acquires.Add(1)
	if c.cutOff.Load() {
		return false, errCutOff
	}
	return c.Lease.Acquire(ctx)
}

func (c *countedLock) Renew(ctx context.Context) (bool, error) {
	defer c.renews.Add(1)
	if c.cutOff.Load() {
		return false, errCutOff
	}
	return c.Lease.Renew(ctx)
}

func (c *countedLock) Release(ctx context.Context) error {
	if c.cutOff.Load() {
		return errCutOff
	}
	return c.Lease.Release(ctx)
}

func newLock(t *testing.T, s *redisstore.Store, ttl time.Duration) *countedLock {
	t.Helper()
	l, err := s.Lease("payouts", ttl)
	if err != nil {
		t.Fatal(err)
	}
	return &countedLock{Lease: l}
}

// roles tracks role instances: how many run now, the most that ever ran at
// once, and which contender started.
type roles struct {
	running atomic.Int64
	max     atomic.Int64
	started chan string
	stopped chan string
}

func newRoles() *roles { return &roles{started: make(chan string, 16), stopped: make(chan string, 16)} }

func (r *roles) role(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		n := r.running.Add(1)
		for {
			m := r.max.Load()
			if n <= m || r.max.CompareAndSwap(m, n) {
				break
			}
		}
		r.started <- name
		<-ctx.Done()
		r.running.Add(-1)
		r.stopped <- name
		return nil
	}
}

func recv(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		return ""
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, wait, what, cond)
}

type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, lock lease.Lock, name string, role func(context.Context) error) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- lease.Run(ctx, lock, lease.Config{Name: name, Logger: zaptest.NewLogger(t).Named(name)}, role)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *runner) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(wait):
		t.Fatal("lease.Run did not return after cancel")
		return nil
	}
}

func TestTwoContendersOneRuns(t *testing.T) {
	s, _ := newStore(t)
	la, lb := newLock(t, s, 3*time.Second), newLock(t, s, 3*time.Second)
	r := newRoles()
	ra := start(t, la, "a", r.role("a"))
	rb := start(t, lb, "b", r.role("b"))
	first := recv(t, r.started, "a role to start")
	holder, loser := la, lb
	stopFirst, other := ra, "b"
	if first == "b" {
		holder, loser, stopFirst, other = lb, la, rb, "a"
	}
	// The loser must have been refused several times while the holder
	// renewed: only then is "the other never started" worth checking.
	waitFor(t, "the loser to retry and the holder to renew", func() bool {
		return loser.acquires.Load() >= 3 && holder.renews.Load() >= 2
	})
	if n := r.running.Load(); n != 1 {
		t.Fatalf("%d roles running, want 1", n)
	}
	if h, err := s.LeaseHolder(context.Background(), "payouts"); err != nil || h != holder.Token() {
		t.Fatalf("lease holder %q (%v), want %s's", h, err, first)
	}
	// A graceful stop releases the lease: the other takes over.
	if err := stopFirst.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, r.stopped, "the first role to stop"); got != first {
		t.Fatalf("stopped %s, want %s", got, first)
	}
	if got := recv(t, r.started, "the other role to take over"); got != other {
		t.Fatalf("started %s, want %s", got, other)
	}
	if m := r.max.Load(); m != 1 {
		t.Fatalf("%d roles ran at once", m)
	}
}

func mustLease(t *testing.T, s *redisstore.Store, ttl time.Duration) *redisstore.Lease {
	t.Helper()
	l, err := s.Lease("payouts", ttl)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A process that took the lease and died (never renews, never releases)
// holds the role only until the key expires.
func TestDeadHolderTakenOver(t *testing.T) {
	s, _ := newStore(t)
	dead := mustLease(t, s, time.Second)
	if ok, err := dead.Acquire(context.Background()); err != nil || !ok {
		t.Fatalf("dead holder acquire: %v %v", ok, err)
	}
	live := newLock(t, s, 3*time.Second)
	r := newRoles()
	start(t, live, "live", r.role("live"))
	recv(t, r.started, "the live process to take over")
	if live.acquires.Load() < 2 {
		t.Fatalf("took the lease on attempt %d while the dead holder's key was alive", live.acquires.Load())
	}
	if h, _ := s.LeaseHolder(context.Background(), "payouts"); h != live.Token() {
		t.Fatalf("holder %q, want the live process", h)
	}
}

// When another process owns the key (our lease expired meanwhile), the next
// renew fails and the role's ctx is cancelled; the runner stands by.
func TestLeaseLostCancelsRole(t *testing.T) {
	s, rdb := newStore(t)
	l := newLock(t, s, 600*time.Millisecond)
	r := newRoles()
	start(t, l, "a", r.role("a"))
	recv(t, r.started, "the role to start")
	if err := rdb.Set(context.Background(), "t:lease:payouts", "intruder", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	recv(t, r.stopped, "the role to be cancelled")
	before := l.acquires.Load()
	waitFor(t, "the runner to retry", func() bool { return l.acquires.Load() >= before+2 })
	if n := r.running.Load(); n != 0 {
		t.Fatalf("role running again while the intruder holds the lease")
	}
	// The intruder goes away: the role runs again.
	rdb.Del(context.Background(), "t:lease:payouts")
	recv(t, r.started, "the role to restart")
}

// A process cut off from Redis cannot renew; it stops its role before the
// lease expires, and the other process takes over without overlap.
func TestRenewFailureStopsRoleBeforeExpiry(t *testing.T) {
	s, _ := newStore(t)
	la, lb := newLock(t, s, 3*time.Second), newLock(t, s, 3*time.Second)
	r := newRoles()
	start(t, la, "a", r.role("a"))
	recv(t, r.started, "a to start")
	start(t, lb, "b", r.role("b"))
	la.cutOff.Store(true)
	if got := recv(t, r.stopped, "a to stop"); got != "a" {
		t.Fatalf("stopped %s", got)
	}
	if got := recv(t, r.started, "b to take over"); got != "b" {
		t.Fatalf("started %s", got)
	}
	if m := r.max.Load(); m != 1 {
		t.Fatalf("%d roles ran at once", m)
	}
}

// A role that fails while holding the lease ends Run with its error and
// releases the lease.
func TestRoleErrorReleases(t *testing.T) {
	s, _ := newStore(t)
	l := newLock(t, s, time.Minute)
	boom := errors.New("boom")
	err := lease.Run(context.Background(), l, lease.Config{Name: "x"}, func(ctx context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
	if h, _ := s.LeaseHolder(context.Background(), "payouts"); h != "" {
		t.Fatalf("lease still held by %q", h)
	}
}
