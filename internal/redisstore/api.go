package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ConnectConfig says how the daemon reaches Redis.
type ConnectConfig struct {
	// Mode is the topology: ModeSingle (default), ModeCluster or
	// ModeSentinel.
	Mode string
	// Addr is the server of ModeSingle.
	Addr string
	// Addrs are the seed nodes of ModeCluster or the Sentinels of
	// ModeSentinel (ModeSingle: Addrs[0] when Addr is empty).
	Addrs []string
	// MasterName is the Sentinel master name (ModeSentinel).
	MasterName string
	// Password authenticates to the data nodes; SentinelPassword to the
	// Sentinels (ModeSentinel, empty: none).
	Password         string
	SentinelPassword string
	// DB is the database number (ModeCluster: 0 only).
	DB     int
	Prefix string
	Logger *zap.Logger
	// MinReplicasAcked and ReplicaAckTimeout: see Config.
	MinReplicasAcked  int
	ReplicaAckTimeout time.Duration
	// DialTimeout bounds the first ping (default 5 s).
	DialTimeout time.Duration
	// AllowUnreachable returns the Store even when Redis does not answer
	// the first ping (no connection, or no reply in time), together with an
	// error wrapping ErrUnreachable: the client connects once Redis is up.
	// For a process that can work without Redis for a while (the share
	// ledger spools). A Redis that answers with an error (wrong password,
	// bad db) still fails: that is a configuration mistake.
	AllowUnreachable bool
}

// ErrUnreachable means Redis did not answer at all, as opposed to answering
// with an error.
var ErrUnreachable = errors.New("redisstore: redis unreachable")

// Connect opens a client for cfg, checks that Redis answers and returns a
// Store over it (see AllowUnreachable for a Redis that is down). Close it with Store.Client().Close(). It exists so that the
// daemon, which must not import go-redis, can make a Store.
func Connect(ctx context.Context, cfg ConnectConfig) (*Store, error) {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	rdb, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := New(rdb, Config{Prefix: cfg.Prefix, Logger: cfg.Logger,
		MinReplicasAcked: cfg.MinReplicasAcked, ReplicaAckTimeout: cfg.ReplicaAckTimeout})
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		var reply redis.Error
		if cfg.AllowUnreachable && !errors.As(err, &reply) {
			return s, fmt.Errorf("%w: %s: %w", ErrUnreachable, cfg.where(), err)
		}
		_ = rdb.Close()
		return nil, fmt.Errorf("redisstore: connect %s: %w", cfg.where(), err)
	}
	return s, nil
}

// ActiveWorker is one worker found by ActiveWorkers.
type ActiveWorker struct {
	Worker    string // full username
	Address   string
	LastShare time.Time
}

// ActiveWorkers lists the workers whose last accepted share is at or after
// since, newest first. The ledger keeps no index of workers, so this scans
// the worker statistics keys of every shard (SCAN, COUNT 1000) and reads each one's last share in
// pipelines: O(workers seen in the statistics TTL). The
// API caches the answer for a few seconds; a pool with very many workers
// wants an index maintained by the ledger's statistics script instead.
func (s *Store) ActiveWorkers(ctx context.Context, since time.Time) ([]ActiveWorker, error) {
	var out []ActiveWorker
	var mu sync.Mutex // a cluster's masters are scanned concurrently
	err := s.scanKeys(ctx, s.workerKeyPattern(), func(ctx context.Context, keys []string) error {
		// Per worker its accepted count and (versions before issue 14's
		// fourth round) last share, and its field in its address's
		// worker list, which holds the last share now (lastShare).
		names := make([]string, len(keys))
		counts := make([]*redis.SliceCmd, len(keys))
		listed := make([]*redis.StringCmd, len(keys))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				worker, ok := s.workerOfKey(k)
				if !ok {
					continue
				}
				names[i] = worker
				counts[i] = p.HMGet(ctx, k, "accepted", "last")
				listed[i] = s.listedLast(ctx, p, worker)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read workers: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, worker := range names {
			if counts[i] == nil {
				continue
			}
			v := counts[i].Val()
			acc, _ := v[0].(string)
			old, _ := v[1].(string)
			accepted, _ := strconv.ParseInt(acc, 10, 64)
			last := lastShare(accepted, old, listed[i])
			if last.IsZero() || last.Before(since) {
				continue // rejects only: never accepted a share
			}
			// The username is "address" or "address.worker" (shares.Share).
			addr, _, _ := strings.Cut(worker, ".")
			out = append(out, ActiveWorker{Worker: worker, Address: addr, LastShare: last})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: scan workers: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastShare.Equal(out[j].LastShare) {
			return out[i].LastShare.After(out[j].LastShare)
		}
		return out[i].Worker < out[j].Worker
	})
	return out, nil
}
