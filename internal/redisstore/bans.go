package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bans shared by every stratum frontend of the pool (stratum.BanStore). A
// frontend writes a ban when it makes one (admin API, reject ratio) and reads
// them all every few seconds; its share path only reads its local copy.

// pruneBansScript deletes expired bans that still hold the value read (a
// ban renewed meanwhile stays). ARGV: key, value pairs.
var pruneBansScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0
`)

// AddBan bans key until the given time, replacing an earlier ban of key.
func (s *Store) AddBan(ctx context.Context, key string, until time.Time) error {
	if err := s.rdb.HSet(ctx, s.bansKey(), key, until.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redisstore: add ban: %w", err)
	}
	return nil
}

// RemoveBan lifts the ban on key.
func (s *Store) RemoveBan(ctx context.Context, key string) error {
	if err := s.rdb.HDel(ctx, s.bansKey(), key).Err(); err != nil {
		return fmt.Errorf("redisstore: remove ban: %w", err)
	}
	return nil
}

// Bans returns the bans in force (key → until). Expired ones are removed from
// the hash as they are met, so it holds only bans that may still apply (a
// ban lasts minutes: the hash stays small).
func (s *Store) Bans(ctx context.Context) (map[string]time.Time, error) {
	all, err := s.rdb.HGetAll(ctx, s.bansKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read bans: %w", err)
	}
	now := time.Now()
	out := make(map[string]time.Time, len(all))
	var expired []any
	for k, v := range all {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.log.Warn("ignoring a malformed shared ban")
			continue
		}
		until := time.UnixMilli(ms)
		if !now.Before(until) {
			expired = append(expired, k, v)
			continue
		}
		out[k] = until
	}
	if len(expired) > 0 {
		// Best effort: a ban that expired is harmless to keep a while.
		_ = pruneBansScript.Run(ctx, s.rdb, []string{s.bansKey()}, expired...).Err()
	}
	return out, nil
}
