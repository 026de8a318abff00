package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Lock is a lease that expires by itself unless renewed. Implementations
// must make Renew and Release act only while this Lock is the holder.
type Lock interface {
	// Acquire tries once to take the lease; true when held afterwards.
	Acquire(ctx context.Context) (bool, error)
	// Renew extends the lease; false when it is no longer held.
	Renew(ctx context.Context) (bool, error)
	// Release gives the lease up if still held.
	Release(ctx context.Context) error
	// TTL is how long the lease lasts after an Acquire or Renew.
	TTL() time.Duration
}

// Config tunes Run. Zero fields take the defaults below.
type Config struct {
	// Name names the role in logs.
	Name string
	// RenewEvery is the renew period (default TTL/3).
	RenewEvery time.Duration
	// RetryEvery is how often a process without the lease tries to take
	// it (default TTL/3).
	RetryEvery time.Duration
	Logger     *zap.Logger
}

// Run runs role while lock is held, until ctx ends or role fails. The role's
// context is cancelled when the lease is lost; Run waits for the role to
// return and then tries to acquire the lease again. An error from role
// while it holds the lease (and its ctx is alive) ends Run with that error
// after releasing the lease, and a role that returns nil by itself ends Run
// with nil (it is done, as a component of the daemon would be). Lock errors are logged and retried, never
// fatal: the process keeps its other roles and takes this one over later.
func Run(ctx context.Context, lock Lock, cfg Config, role func(ctx context.Context) error) error {
	ttl := lock.TTL()
	if ttl <= 0 {
		return fmt.Errorf("lease %s: ttl %v", cfg.Name, ttl)
	}
	if cfg.RenewEvery <= 0 {
		cfg.RenewEvery = ttl / 3
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = ttl / 3
	}
	if cfg.RenewEvery >= ttl {
		return fmt.Errorf("lease %s: renew period %v is not below the ttl %v", cfg.Name, cfg.RenewEvery, ttl)
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("role", cfg.Name))
	waiting := false // logged once per wait, not per retry
	for {
		if ctx.Err() != nil {
			return nil
		}
		start := time.Now()
		held, err := lock.Acquire(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("lease acquire failed", zap.Error(err))
		case held:
			waiting = false
			log.Info("lease acquired; role starting")
			lost, err := hold(ctx, lock, cfg, start, log, role)
			if !lost || ctx.Err() != nil {
				return err
			}
			continue // lost: try again at once (it may have been a blip)
		case !waiting && ctx.Err() == nil:
			waiting = true
			log.Info("lease held by another process; standing by")
		}
		t := time.NewTimer(cfg.RetryEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// hold runs role while renewing the lease. It reports lost when the lease
// was lost (the role was stopped and may run again later); otherwise the
// role ended by itself (err is its error) or ctx ended.
// acquired is when the Acquire call that took the lease began: the lease
// surely lasts until acquired+ttl.
func hold(ctx context.Context, lock Lock, cfg Config, acquired time.Time, log *zap.Logger,
	role func(context.Context) error) (lost bool, err error) {
	ttl := lock.TTL()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- role(rctx) }()

	// Stop the role once less than one renew period of the lease is left
	// unconfirmed: it needs a moment to stop, and the next holder may start
	// the moment the key expires.
	validUntil := acquired.Add(ttl)
	renew := time.NewTicker(cfg.RenewEvery)
	defer renew.Stop()
	release := func() {
		rc, rcancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.RenewEvery)
		defer rcancel()
		if err := lock.Release(rc); err != nil {
			log.Warn("lease release failed; it expires by itself", zap.Error(err))
		}
	}
	for {
		select {
		case err := <-done:
			release()
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return false, nil
			}
			log.Info("role ended; lease released", zap.Error(err))
			return false, err
		case <-ctx.Done():
			cancel()
			<-done
			release()
			log.Info("lease released; role stopped")
			return false, nil
		case <-renew.C:
			start := time.Now()
			rc, rcancel := context.WithDeadline(ctx, validUntil)
			ok, err := lock.Renew(rc)
			rcancel()
			switch {
			case err == nil && ok:
				validUntil = start.Add(ttl)
				continue
			case err == nil:
				log.Warn("lease lost (another process holds it or it expired); stopping role")
			case ctx.Err() != nil:
				continue // shutting down: the Done case handles it
			case time.Until(validUntil) > cfg.RenewEvery:
				log.Warn("lease renew failed; retrying", zap.Error(err),
					zap.Duration("left", time.Until(validUntil)))
				continue
			default:
				log.Warn("lease not renewed in time; stopping role", zap.Error(err))
			}
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("role stopped with an error", zap.Error(err))
			}
			return true, nil
		}
	}
}
