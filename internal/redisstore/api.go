package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ConnectConfig says how the daemon reaches Redis.
type ConnectConfig struct {
	Addr     string
	Password string
	DB       int
	Prefix   string
	Logger   *zap.Logger
	// DialTimeout bounds the first ping (default 5 s).
	DialTimeout time.Duration
}

// Connect opens a client for cfg, checks that Redis answers and returns a
// Store over it. Close it with Store.Client().Close(). It exists so that the
// daemon, which must not import go-redis, can make a Store.
func Connect(ctx context.Context, cfg ConnectConfig) (*Store, error) {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:     cfg.Addr,
		Password: cfg.Password,
		DB:       cfg.DB,
	})
	s := New(rdb, Config{Prefix: cfg.Prefix, Logger: cfg.Logger})
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redisstore: connect %s: %w", cfg.Addr, err)
	}
	return s, nil
}
