package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = "lode"

// Config configures a Store.
type Config struct {
	// Prefix starts every key (default "lode"); several pools can share one
	// Redis with different prefixes.
	Prefix string
	Logger *zap.Logger
	// MinReplicasAcked, when positive, makes every share batch wait until
	// that many replicas of the master holding the accounting keys have it
	// (WAIT on the connection that wrote it) before ApplyBatch returns nil;
	// fewer within ReplicaAckTimeout is an error (ErrNotReplicated), so the
	// ledger spools the batch instead of acknowledging its shares. 0: a
	// batch is acknowledged once the master applied it (docs/redis.md,
	// "Topologies and what an acknowledged share survives").
	MinReplicasAcked int
	// ReplicaAckTimeout bounds that wait (default DefaultReplicaAckTimeout).
	// Keep it below the ledger's write timeout.
	ReplicaAckTimeout time.Duration
}

// DefaultReplicaAckTimeout bounds the WAIT for replicas when
// Config.ReplicaAckTimeout is zero: replicas on a LAN acknowledge within a
// millisecond or two; a replica slower than this is treated as missing.
const DefaultReplicaAckTimeout = 500 * time.Millisecond

// Store holds the Redis client and the key prefix. Methods for each domain
// live in their own files (shares.go, blocks.go, payments.go).
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	log    *zap.Logger
	// minReplicas and replicaTimeout: Config.MinReplicasAcked and
	// ReplicaAckTimeout.
	minReplicas    int
	replicaTimeout time.Duration
	// win are the PPLNS window's key names (keys_window.go).
	win windowKeys
	// cache is what the statistics writes may leave out (shares.go).
	cache statsCache
	// acct is what the accounting script last wrote (acct_cache.go).
	acct acctCache
}

// New returns a Store over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ReplicaAckTimeout <= 0 {
		cfg.ReplicaAckTimeout = DefaultReplicaAckTimeout
	}
	s := &Store{rdb: rdb, prefix: cfg.Prefix, log: cfg.Logger,
		minReplicas: cfg.MinReplicasAcked, replicaTimeout: cfg.ReplicaAckTimeout}
	s.win = newWindowKeys(s)
	return s
}

// Client returns the underlying client (for health checks).
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// key joins the prefix and parts with ':'.
func (s *Store) key(parts ...string) string {
	return s.prefix + ":" + strings.Join(parts, ":")
}

// acctTag is the hash tag shared by every accounting key.
const acctTag = "{acct}"
