package redisstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Topologies of ConnectConfig.Mode (config redis.mode).
const (
	// ModeSingle is one Redis server (with or without replicas behind it).
	ModeSingle = "single"
	// ModeCluster is a Redis Cluster: Addrs are seed nodes, the client
	// follows the slot map (MOVED/ASK, failovers).
	ModeCluster = "cluster"
	// ModeSentinel is a primary with replicas managed by Sentinels: Addrs
	// are the Sentinels, the client asks them for the current primary and
	// follows a failover.
	ModeSentinel = "sentinel"
)

// UnixScheme starts a single-mode address that is the path of a Redis Unix
// socket: "unix:///run/redis/redis.sock".
const UnixScheme = "unix://"

// Modes lists the valid ConnectConfig.Mode values.
var Modes = []string{ModeSingle, ModeCluster, ModeSentinel}

// newClient builds the go-redis client of cfg's topology. Every mode yields a
// redis.UniversalClient; the Store's scripts keep each call on one slot, so
// they run unchanged on all three.
func newClient(cfg ConnectConfig) (redis.UniversalClient, error) {
	switch cfg.Mode {
	case "", ModeSingle:
		addr := cfg.Addr
		if addr == "" && len(cfg.Addrs) > 0 {
			addr = cfg.Addrs[0]
		}
		opt := &redis.Options{Addr: addr, Password: cfg.Password, DB: cfg.DB}
		if path, ok := strings.CutPrefix(addr, UnixScheme); ok {
			// A local Redis over its Unix socket: no TCP stack on either
			// side, less CPU per round trip (bench/README.md, issue 11).
			if !strings.HasPrefix(path, "/") {
				return nil, fmt.Errorf("redisstore: unix socket address %q: want %s/absolute/path", addr, UnixScheme)
			}
			opt.Network, opt.Addr = "unix", path
		}
		return redis.NewClient(opt), nil
	case ModeCluster:
		if len(cfg.Addrs) == 0 {
			return nil, fmt.Errorf("redisstore: cluster mode needs at least one seed address")
		}
		if cfg.DB != 0 {
			return nil, fmt.Errorf("redisstore: a Redis Cluster has database 0 only, got db %d", cfg.DB)
		}
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cfg.Addrs, Password: cfg.Password}), nil
	case ModeSentinel:
		if len(cfg.Addrs) == 0 || cfg.MasterName == "" {
			return nil, fmt.Errorf("redisstore: sentinel mode needs the Sentinels' addresses and the master name")
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: cfg.MasterName, SentinelAddrs: cfg.Addrs,
			SentinelPassword: cfg.SentinelPassword, Password: cfg.Password, DB: cfg.DB,
		}), nil
	}
	return nil, fmt.Errorf("redisstore: unknown redis mode %q (want %s)", cfg.Mode, strings.Join(Modes, ", "))
}

// where names the Redis of cfg in errors.
func (cfg ConnectConfig) where() string {
	switch cfg.Mode {
	case ModeCluster:
		return "cluster " + strings.Join(cfg.Addrs, ",")
	case ModeSentinel:
		return "sentinel master " + cfg.MasterName + " via " + strings.Join(cfg.Addrs, ",")
	}
	if cfg.Addr == "" && len(cfg.Addrs) > 0 {
		return cfg.Addrs[0]
	}
	return cfg.Addr
}

// forEachMaster runs fn on every master: the one server of a single or
// Sentinel client, each master of a cluster (SCAN, for one, sees only the
// node it is sent to).
func (s *Store) forEachMaster(ctx context.Context, fn func(ctx context.Context, c redis.UniversalClient) error) error {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return fn(ctx, c) })
	}
	return fn(ctx, s.rdb)
}

// scanKeys calls fn with each page of keys matching pattern, over every
// master.
func (s *Store) scanKeys(ctx context.Context, pattern string, fn func(ctx context.Context, keys []string) error) error {
	return s.forEachMaster(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				if err := fn(ctx, keys); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	})
}
