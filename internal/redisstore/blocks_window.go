package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// The verifiable side of found blocks: window archives, their roots and the
// on-chain commitments (docs/verify.md, docs/redis.md).

var _ payouts.WindowLedger = (*Store)(nil)

// splitSeq splits "instance:counter" ("" gives two empty strings).
func splitSeq(seq string) (instance, counter string, err error) {
	if seq == "" {
		return "", "", nil
	}
	i := strings.LastIndexByte(seq, ':')
	if i <= 0 || i == len(seq)-1 || strings.ContainsAny(seq, "|{}") {
		return "", "", fmt.Errorf("finding share sequence %q: want instance:counter", seq)
	}
	c := seq[i+1:]
	if _, err := strconv.ParseUint(c, 10, 64); err != nil || (len(c) > 1 && c[0] == '0') {
		return "", "", fmt.Errorf("finding share sequence %q: bad counter", seq)
	}
	return seq[:i], c, nil
}

// setRootScript stores a window's root once and queues it for the on-chain
// commitment. KEYS: 1 block, 2 commit pending. ARGV: 1 hash, 2 root hex,
// 3 total units, 4 height. Returns 1 when set now, 0 when it was set
// already (to the same root); false when the block is unknown.
var setRootScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cur = redis.call('HGET', KEYS[1], 'window_root')
if cur then
  if cur ~= ARGV[2] then return redis.error_reply('ROOTMISMATCH stored root ' .. cur .. ', computed ' .. ARGV[2]) end
  return 0
end
local units = redis.call('HGET', KEYS[1], 'window_units')
if units ~= ARGV[3] then
  return redis.error_reply('TOTALMISMATCH record says ' .. tostring(units) .. ' units, archive sums to ' .. ARGV[3])
end
redis.call('HSET', KEYS[1], 'window_root', ARGV[2])
if not redis.call('HGET', KEYS[1], 'committed_in') then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
return 1
`)

// SetWindowRoot implements payouts.WindowLedger.
func (s *Store) SetWindowRoot(ctx context.Context, hash chainhash.Hash, height int64, root window.Node) (bool, error) {
	h := hash.String()
	n, err := setRootScript.Run(ctx, s.rdb, []string{s.blockKey(h), s.commitPendingKey()},
		h, root.Hash.String(), root.Sum.String(), height).Int()
	if errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: set window root of %s: %w", h, err)
	}
	return n == 1, nil
}

// archiveChunk is how many archive elements one LRANGE reads.
const archiveChunk = 10_000

// ParseArchiveLeaf parses one element of a window archive.
func ParseArchiveLeaf(e string) (window.Leaf, error) {
	p := strings.Split(e, "|")
	if len(p) != 4 || p[2] == "" {
		return window.Leaf{}, fmt.Errorf("malformed window archive element %q", e)
	}
	return window.Leaf{FirstSeq: p[0], LastSeq: p[1], Address: p[2], Units: p[3]}, nil
}

// WindowLeaves implements payouts.WindowLedger: it calls fn with every leaf
// of the block's archived window, oldest first, reading archiveChunk at a
// time (the archive is immutable, so chunks are consistent). It fails with
// payouts.ErrArchivePruned when the retention deleted the archive.
func (s *Store) WindowLeaves(ctx context.Context, hash chainhash.Hash, fn func(window.Leaf) error) error {
	h := hash.String()
	rec, err := s.rdb.HMGet(ctx, s.blockKey(h), fieldHash, fieldWindowLeaves, fieldWindowArchive).Result()
	if err != nil {
		return fmt.Errorf("redisstore: read block %s: %w", h, err)
	}
	if rec[0] == nil {
		return fmt.Errorf("redisstore: block %s: %w", h, payouts.ErrBlockNotFound)
	}
	if rec[2] == "pruned" {
		return fmt.Errorf("redisstore: window of %s: %w", h, payouts.ErrArchivePruned)
	}
	want := int64(-1) // a record from before archives: no count
	if v, ok := rec[1].(string); ok {
		if want, err = strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("redisstore: block %s: window_leaves %q", h, v)
		}
	}
	if want < 0 {
		return fmt.Errorf("redisstore: block %s was recorded without a window archive: %w", h, payouts.ErrArchivePruned)
	}
	var n int64
	for start := int64(0); ; start += archiveChunk {
		els, err := s.rdb.LRange(ctx, s.blockWindowKey(h), start, start+archiveChunk-1).Result()
		if err != nil {
			return fmt.Errorf("redisstore: read window of %s: %w", h, err)
		}
		for _, e := range els {
			l, err := ParseArchiveLeaf(e)
			if err != nil {
				return fmt.Errorf("redisstore: window of %s, leaf %d: %w", h, n, err)
			}
			n++
			if err := fn(l); err != nil {
				return err
			}
		}
		if len(els) < archiveChunk {
			break
		}
	}
	if n != want {
		return fmt.Errorf("redisstore: window of %s has %d leaves, its record says %d (pruned while read?)", h, n, want)
	}
	return nil
}

// PruneWindowArchives implements payouts.WindowLedger: it deletes the
// window archives of the blocks that are both outside the keepBlocks
// highest recorded blocks and found before now − keepFor, and marks their
// records "pruned" (root, total and sequence bounds stay). UNLINK frees the
// memory off Redis's main thread.
func (s *Store) PruneWindowArchives(ctx context.Context, keepBlocks int, keepFor time.Duration, now time.Time) (int, error) {
	hashes, err := s.rdb.ZRevRange(ctx, s.blocksIndexKey(), int64(keepBlocks), -1).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: list blocks: %w", err)
	}
	cutoff := now.Add(-keepFor).UnixMilli()
	pruned := 0
	for _, h := range hashes {
		v, err := s.rdb.HMGet(ctx, s.blockKey(h), fieldFoundAt, fieldWindowArchive, fieldWindowLeaves).Result()
		if err != nil {
			return pruned, fmt.Errorf("redisstore: read block %s: %w", h, err)
		}
		if v[1] == "pruned" || v[2] == nil {
			continue // pruned already, or recorded before archives
		}
		found, _ := v[0].(string)
		at, err := strconv.ParseInt(found, 10, 64)
		if err != nil || at >= cutoff {
			continue
		}
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Unlink(ctx, s.blockWindowKey(h))
			p.HSet(ctx, s.blockKey(h), fieldWindowArchive, "pruned")
			return nil
		})
		if err != nil {
			return pruned, fmt.Errorf("redisstore: prune window of %s: %w", h, err)
		}
		pruned++
	}
	return pruned, nil
}

// PendingCommitments returns the windows awaiting an on-chain commitment,
// lowest height first, at most window.MaxCommitted (the job builder's
// blocktemplate.CommitmentSource, through the daemon).
func (s *Store) PendingCommitments(ctx context.Context) ([]window.Committed, error) {
	_, w, err := s.pendingCommitments(ctx)
	return w, err
}

func (s *Store) pendingCommitments(ctx context.Context) ([]string, []window.Committed, error) {
	hashes, err := s.rdb.ZRange(ctx, s.commitPendingKey(), 0, window.MaxCommitted-1).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: pending commitments: %w", err)
	}
	w, err := s.committedOf(ctx, hashes)
	return hashes, w, err
}

// commitDigestTTL is how long a commitment digest's list is kept: far
// longer than a job lives.
const commitDigestTTL = 7 * 24 * time.Hour

func (s *Store) committedOf(ctx context.Context, hashes []string) ([]window.Committed, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(hashes))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = p.HMGet(ctx, s.blockKey(h), fieldWindowRoot, fieldWindowUnits)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: read window roots: %w", err)
	}
	out := make([]window.Committed, 0, len(hashes))
	for i, c := range cmds {
		v := c.Val()
		root, _ := v[0].(string)
		units, _ := v[1].(string)
		r, err := window.ParseHash(root)
		if err != nil {
			return nil, fmt.Errorf("redisstore: window root of %s: %w", hashes[i], err)
		}
		u, ok := new(big.Int).SetString(units, 10)
		if !ok {
			return nil, fmt.Errorf("redisstore: window units of %s: %q", hashes[i], units)
		}
		bh, err := window.HexBlockHash(hashes[i])
		if err != nil {
			return nil, err
		}
		out = append(out, window.Committed{Block: bh, Root: r, Total: u})
	}
	return out, nil
}

// markCommittedScript records that block KEYS[1]'s coinbase commits the
// windows of the ARGV hashes: each leaves the pending set and names the
// block (the first committing block it was recorded with: a window two jobs
// committed keeps the first); the block lists them. KEYS: 1 block, 2 block commits, 3 pending,
// then one block key per ARGV[2..]. ARGV: 1 the committing block's hash,
// 2.. the committed hashes in order. Returns 0 when already recorded.
var markCommittedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for i = 2, #ARGV do
  redis.call('ZREM', KEYS[3], ARGV[i])
  redis.call('HSETNX', KEYS[2 + i], 'committed_in', ARGV[1])
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
return 1
`)

// MarkCommitted implements payouts.WindowLedger: the windows c covers are
// the list the job builder kept for its digest (else the first c.Count
// pending ones); their roots must hash to c.Digest. They are then recorded
// as committed in block hash (a window that an earlier block committed too
// keeps that one). A commitment that matches nothing known returns an error
// wrapping window.ErrMismatch and changes nothing; those windows are
// committed by a later block.
func (s *Store) MarkCommitted(ctx context.Context, hash chainhash.Hash, c window.Commitment) error {
	h := hash.String()
	if n, err := s.rdb.Exists(ctx, s.blockCommitsKey(h)).Result(); err != nil {
		return fmt.Errorf("redisstore: commits of %s: %w", h, err)
	} else if n == 1 {
		return nil // recorded already (a retry)
	}
	// The list the job builder committed to; without it (expired, or a job
	// from before lists were kept), the first pending windows.
	var hashes []string
	list, err := s.rdb.Get(ctx, s.commitDigestKey(c.Digest.String())).Result()
	switch {
	case err == nil && list != "":
		hashes = strings.Split(list, ",")
	case err == nil || errors.Is(err, redis.Nil):
		if hashes, err = s.rdb.ZRange(ctx, s.commitPendingKey(), 0, int64(c.Count)-1).Result(); err != nil {
			return fmt.Errorf("redisstore: pending commitments: %w", err)
		}
	default:
		return fmt.Errorf("redisstore: commitment list: %w", err)
	}
	w, err := s.committedOf(ctx, hashes)
	if err != nil {
		return err
	}
	if err := c.Check(w); err != nil {
		return fmt.Errorf("redisstore: commitment in block %s: %w", h, err)
	}
	keys := []string{s.blockKey(h), s.blockCommitsKey(h), s.commitPendingKey()}
	args := []any{h}
	for _, x := range hashes {
		keys = append(keys, s.blockKey(x))
		args = append(args, x)
	}
	if err := markCommittedScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisstore: mark windows committed in %s: %w", h, err)
	}
	return nil
}

// BlockCommits returns the hashes of the blocks whose windows the coinbase
// of block hash commits, in commitment order, with their roots and totals.
func (s *Store) BlockCommits(ctx context.Context, hash chainhash.Hash) ([]string, []window.Committed, error) {
	hashes, err := s.rdb.LRange(ctx, s.blockCommitsKey(hash.String()), 0, -1).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: commits of %s: %w", hash, err)
	}
	w, err := s.committedOf(ctx, hashes)
	return hashes, w, err
}

var _ blocktemplate.CommitmentSource = (*Store)(nil)

// CommitmentScript implements blocktemplate.CommitmentSource: the OP_RETURN
// script committing the pending windows (docs/verify.md), nil when none is
// pending.
// It keeps the list the digest covers (commitDigestKey), so the block that
// carries it is matched to its windows whatever was committed meanwhile.
func (s *Store) CommitmentScript(ctx context.Context) ([]byte, error) {
	hashes, w, err := s.pendingCommitments(ctx)
	if err != nil || len(w) == 0 {
		return nil, err
	}
	script, err := window.CommitScript(w)
	if err != nil {
		return nil, fmt.Errorf("redisstore: commitment script: %w", err)
	}
	d, _ := window.CommitDigest(w)
	if err := s.rdb.Set(ctx, s.commitDigestKey(d.String()), strings.Join(hashes, ","), commitDigestTTL).Err(); err != nil {
		return nil, fmt.Errorf("redisstore: commitment list: %w", err)
	}
	return script, nil
}
