package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
)

// Reads for the API's dashboard views: hashrate series from the ledger's
// statistics buckets, pages of blocks and payouts, and per-address credits.
// None is on the share path.

// HashrateScope names whose hashrate a series is: the pool, one payout
// address, or one worker (its full username "address.name").
type HashrateScope struct {
	Address, Worker string
}

// field returns the hash tag of the scope's buckets and its field in them.
func (sc HashrateScope) field() (tag, field string) {
	switch {
	case sc.Worker != "":
		return shardTag(sc.Worker), "w:" + sc.Worker
	case sc.Address != "":
		return shardTag(sc.Address), "m:" + sc.Address
	}
	return statsTag, "pool"
}

// HashrateBucket is one bucket of a series: Σ accepted difficulty from
// Start for the bucket's length.
type HashrateBucket struct {
	Start      time.Time
	Difficulty float64
}

// HashrateSeries is a scope's completed buckets, oldest first: the last 60
// minutes (Minutes) and the last 143 10-minute slots (Slots). The current,
// partial minute and slot are left out, so no point reads low for being
// young. The buckets live in Redis: a restart loses nothing.
type HashrateSeries struct {
	Minutes []HashrateBucket
	Slots   []HashrateBucket
}

// HashrateSeries reads the series of one scope in one round trip.
func (s *Store) HashrateSeries(ctx context.Context, scope HashrateScope, now time.Time) (HashrateSeries, error) {
	tag, field := scope.field()
	minute, slot := now.Unix()/60, now.Unix()/slotSeconds
	const minutes, slots = 60, daySlots - 1
	mc := make([]*redis.StringCmd, minutes)
	sc := make([]*redis.StringCmd, slots)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range minutes {
			mc[i] = p.HGet(ctx, s.hashrateKey(tag, minute-int64(minutes-i)), field)
		}
		for i := range slots {
			sc[i] = p.HGet(ctx, s.hashrateSlotKey(tag, slot-int64(slots-i)), field)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return HashrateSeries{}, fmt.Errorf("redisstore: read hashrate series: %w", err)
	}
	out := HashrateSeries{Minutes: make([]HashrateBucket, minutes), Slots: make([]HashrateBucket, slots)}
	for i, c := range mc {
		d := parseSumD(c.Val()) // a worker's field is packed (economics.go)
		out.Minutes[i] = HashrateBucket{Start: time.Unix((minute-int64(minutes-i))*60, 0).UTC(), Difficulty: d}
	}
	for i, c := range sc {
		d := parseSumD(c.Val()) // a worker's field is packed (economics.go)
		out.Slots[i] = HashrateBucket{Start: time.Unix((slot-int64(slots-i))*slotSeconds, 0).UTC(), Difficulty: d}
	}
	return out, nil
}

// BlocksPage lists limit blocks from offset, newest first, with the
// number of blocks recorded.
func (s *Store) BlocksPage(ctx context.Context, offset, limit int) ([]payouts.Block, int64, error) {
	if limit <= 0 || offset < 0 {
		return nil, 0, nil
	}
	var hashes *redis.StringSliceCmd
	var total *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		hashes = p.ZRevRange(ctx, s.blocksIndexKey(), int64(offset), int64(offset+limit-1))
		total = p.ZCard(ctx, s.blocksIndexKey())
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: list blocks: %w", err)
	}
	blocks, err := s.blocksByHash(ctx, hashes.Val())
	return blocks, total.Val(), err
}

// PayoutsPage lists limit payouts from offset, newest first, with the
// number of payouts recorded.
func (s *Store) PayoutsPage(ctx context.Context, offset, limit int) ([]*payment.Payout, int64, error) {
	if limit <= 0 || offset < 0 {
		return nil, 0, nil
	}
	var ids *redis.StringSliceCmd
	var total *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		ids = p.ZRevRange(ctx, s.payoutsIndexKey(), int64(offset), int64(offset+limit-1))
		total = p.ZCard(ctx, s.payoutsIndexKey())
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: list payouts: %w", err)
	}
	ps, err := s.payoutsByID(ctx, ids.Val())
	return ps, total.Val(), err
}

// BlockRoundTotals returns each block's round work: Σ difficulty units of
// the shares since the pool's previous block, as its snapshot closed the
// round ("" when unknown).
func (s *Store) BlockRoundTotals(ctx context.Context, hashes []string) ([]string, error) {
	cmds := make([]*redis.StringCmd, len(hashes))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = p.Get(ctx, s.blockRoundTotalKey(h))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: read round totals: %w", err)
	}
	out := make([]string, len(hashes))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// AddressCredits returns what each block credited address (0 when none),
// in one round trip.
func (s *Store) AddressCredits(ctx context.Context, hashes []string, address string) ([]int64, error) {
	cmds := make([]*redis.StringCmd, len(hashes))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = p.HGet(ctx, s.blockCreditsKey(h), address)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: read credits of %s: %w", address, err)
	}
	out := make([]int64, len(hashes))
	for i, c := range cmds {
		out[i], _ = strconv.ParseInt(c.Val(), 10, 64)
	}
	return out, nil
}
