// Package lease runs a role (the unlocker, the payout processor) only while
// this process holds a lease on it, so several lode processes can share one
// Redis and exactly one of them runs each such role.
//
// The package is the domain side: it declares the Lock it needs (acquire,
// renew, release a lease that expires by itself) and leaves the storage to an
// adapter (internal/redisstore.Lease). Run acquires the lock, starts the
// role, renews the lock on a timer and cancels the role's context as soon as
// it can no longer be sure it holds the lock (a renew refused, or no renew
// confirmed for most of the TTL, so the role is stopped before the lease can
// pass to another process). It then tries to acquire again.
//
// Concurrency: Run starts one goroutine for the role while the lease is held
// and waits for it before returning or re-acquiring, so the role never runs
// twice at once in one process.
package lease
