package redisstore

import (
	"context"
	"fmt"
	"strings"

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
}

// Store holds the Redis client and the key prefix. Methods for each domain
// live in their own files (shares.go, blocks.go, payments.go).
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	log    *zap.Logger
}

// New returns a Store over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Store{rdb: rdb, prefix: cfg.Prefix, log: cfg.Logger}
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
