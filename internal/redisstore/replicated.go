package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated means a share batch was applied by the master but fewer
// than Config.MinReplicasAcked replicas confirmed it in time. The ledger
// treats it like any failed write: the batch goes to the spool (replayed
// later, idempotently) and no share of it is acknowledged on the master's
// word alone.
var ErrNotReplicated = errors.New("redisstore: batch not acknowledged by enough replicas")

// acctMaster returns the client whose connections reach the master holding
// key: the node client of a cluster (so the script, the fence and WAIT share
// one connection on that master), else the Store's client.
func (s *Store) acctMaster(ctx context.Context, key string) (redis.UniversalClient, error) {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return s.rdb, nil
	}
	c, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("master for %s: %w", key, err)
	}
	return c, nil
}

// applyReplicated writes one share batch and waits for replicas. On one
// connection to the master holding the accounting slot it pipelines:
//
//   - the accounting script (a no-op when the batch was applied before);
//   - a fence: EXPIRE of the instance's applied key (the key exists once the
//     script ran, and its TTL is the one the script sets). WAIT waits for the
//     replication offset of this connection's last write; a replayed batch
//     that the script skips writes nothing, and WAIT would then return at
//     once although the first attempt's write (on another connection) may
//     not have reached a replica yet. The fence is a write after it, so WAIT
//     covers it;
//   - WAIT minReplicas timeout.
//
// Statistics (other slots on a cluster) go through the Store's client; on a
// single server or Sentinel primary they ride the same pipeline before WAIT.
//
// It returns the accounting script's call (nil without acctKeys).
func (s *Store) applyReplicated(ctx context.Context, acctKeys []string, acctArgs []any, stats []statsCall) (*redis.Cmd, error) {
	if acctKeys == nil {
		if len(stats) > 0 {
			_, err := s.pipeline(ctx, s.rdb, nil, stats)
			return nil, err
		}
		return nil, nil
	}
	c, err := s.acctMaster(ctx, acctKeys[0])
	if err != nil {
		return nil, err
	}
	_, cluster := s.rdb.(*redis.ClusterClient)
	var acct, wait *redis.Cmd
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		acct = acctScript.EvalSha(ctx, p, acctKeys, acctArgs...)
		if !cluster {
			for i := range stats {
				stats[i].res = p.Do(ctx, stats[i].cmd...)
			}
		}
		p.Expire(ctx, acctKeys[len(acctKeys)-1], appliedTTL)
		wait = p.Do(ctx, "WAIT", s.minReplicas, s.replicaTimeout.Milliseconds())
		return nil
	})
	if err == nil {
		for _, c := range cmds {
			if err = c.Err(); err != nil {
				break
			}
		}
	}
	if err != nil {
		if cc, ok := s.rdb.(*redis.ClusterClient); ok && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			// A failover or a moved slot: the node client does not follow
			// MOVED by itself. Refresh the slot map for the next attempt.
			cc.ReloadState(ctx)
		}
		return acct, err
	}
	if err := s.waited(wait); err != nil {
		return acct, err
	}
	if cluster && len(stats) > 0 {
		_, err := s.pipeline(ctx, s.rdb, nil, stats)
		return acct, err
	}
	return acct, nil
}

// runAcked runs script like Script.Run and, with MinReplicasAcked > 0,
// returns nil only once that many replicas of the master holding keys[0]
// have its writes: the script and WAIT go down one connection to that
// master, as for a share batch. Fewer replicas in time is ErrNotReplicated:
// the write may stand on the primary alone, and a failover to a replica
// without it would undo it. The payout processor commits a payout this way
// before it broadcasts the transaction, so a failover never forgets a debit
// whose payment is on its way (a commit it was not told about is not
// broadcast; the next run resolves it, see docs/redis.md).
func (s *Store) runAcked(ctx context.Context, script *redis.Script, keys []string, args ...any) error {
	if s.minReplicas <= 0 {
		return script.Run(ctx, s.rdb, keys, args...).Err()
	}
	c, err := s.acctMaster(ctx, keys[0])
	if err != nil {
		return err
	}
	var run, wait *redis.Cmd
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		run = script.Eval(ctx, p, keys, args...) // EVAL: no NOSCRIPT round in a pipeline; payouts are rare
		wait = p.Do(ctx, "WAIT", s.minReplicas, s.replicaTimeout.Milliseconds())
		return nil
	})
	if rerr := run.Err(); rerr != nil {
		err = rerr // the script's own refusal (it wrote nothing) comes first
	}
	if err != nil {
		if cc, ok := s.rdb.(*redis.ClusterClient); ok {
			cc.ReloadState(ctx)
		}
		return err
	}
	return s.waited(wait)
}

// waited checks the reply of WAIT: at least minReplicas replicas, else
// ErrNotReplicated.
func (s *Store) waited(wait *redis.Cmd) error {
	got, err := wait.Int64()
	if err != nil {
		return fmt.Errorf("redisstore: WAIT reply: %w", err)
	}
	if got < int64(s.minReplicas) {
		return fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, got, s.minReplicas, s.replicaTimeout)
	}
	return nil
}
