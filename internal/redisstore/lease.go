package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is a Redis lease on one role (say "payouts"): at most one process
// holds it at a time. The holder writes a random owner token with SET NX PX
// and must renew it before the TTL runs out; renewing and releasing only
// act while the key still holds this Lease's token, so a process that lost
// the lease (it expired while the process was stalled, and another took it)
// can never extend or delete the new holder's lease.
//
// A Lease is safe for use by several goroutines, though one runner normally
// drives it.
type Lease struct {
	rdb   redis.UniversalClient
	key   string
	token string
	ttl   time.Duration
}

// Lease returns a lease on role with the given TTL and a fresh random owner
// token. Nothing is written until Acquire.
func (s *Store) Lease(role string, ttl time.Duration) (*Lease, error) {
	if role == "" {
		return nil, errors.New("redisstore: lease: empty role")
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("redisstore: lease %s: ttl %v is below 1ms", role, ttl)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("redisstore: lease %s: token: %w", role, err)
	}
	return &Lease{rdb: s.rdb, key: s.leaseKey(role), token: hex.EncodeToString(b[:]), ttl: ttl}, nil
}

// Token is this lease's owner token (what the key holds while it is held).
func (l *Lease) Token() string { return l.token }

// TTL is the lease's time to live after each Acquire or Renew.
func (l *Lease) TTL() time.Duration { return l.ttl }

// acquireScript takes the lease when the key is free, or refreshes it when
// this token already holds it (a retry after a lost reply must not look like
// someone else holding the lease). KEYS[1] lease; ARGV token, ttl ms.
// Returns 1 when held by ARGV[1] afterwards, 0 otherwise.
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// renewScript extends the lease only while the key holds our token.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the key only while it holds our token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Acquire tries once to take the lease. It reports whether this Lease holds
// it now (true also when it already did: the TTL is refreshed).
func (l *Lease) Acquire(ctx context.Context) (bool, error) {
	n, err := acquireScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: acquire lease %s: %w", l.key, err)
	}
	return n == 1, nil
}

// Renew extends the lease by its TTL. It reports false when the lease is no
// longer this Lease's (it expired, maybe another process holds it now).
func (l *Lease) Renew(ctx context.Context) (bool, error) {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: renew lease %s: %w", l.key, err)
	}
	return n == 1, nil
}

// Release gives the lease up if this Lease still holds it, so another
// process can take it at once instead of after the TTL.
func (l *Lease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.token).Err(); err != nil {
		return fmt.Errorf("redisstore: release lease %s: %w", l.key, err)
	}
	return nil
}

// LeaseHolder returns the owner token holding role's lease, or "" when
// nobody holds it (for operators and tests).
func (s *Store) LeaseHolder(ctx context.Context, role string) (string, error) {
	v, err := s.rdb.Get(ctx, s.leaseKey(role)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: lease holder %s: %w", role, err)
	}
	return v, nil
}
