package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/alerts"
)

var _ alerts.Store = (*Store)(nil)

// Alert subscription keys (docs/redis.md): a hash id → subscription JSON,
// and per address a set of its ids (for the per-address limit). One hash
// tag, so one script changes both.
const alertsTag = "{alerts}"

func (s *Store) alertSubsKey() string { return s.key(alertsTag, "subs") }

func (s *Store) alertAddrKey(address string) string { return s.key(alertsTag, "addr", address) }

// addSubScript: KEYS subs, address set; ARGV id, json, max. Returns 0 when
// the address has max subscriptions already.
var addSubScript = redis.NewScript(`
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`)

// AddSubscription implements alerts.Store.
func (s *Store) AddSubscription(ctx context.Context, sub alerts.Subscription, maxPerAddress int) error {
	b, err := json.Marshal(sub)
	if err != nil {
		return fmt.Errorf("redisstore: encode subscription: %w", err)
	}
	ok, err := addSubScript.Run(ctx, s.rdb, []string{s.alertSubsKey(), s.alertAddrKey(sub.Address)}, sub.ID, b, maxPerAddress).Int()
	if err != nil {
		return fmt.Errorf("redisstore: add subscription: %w", err)
	}
	if ok == 0 {
		return alerts.ErrTooMany
	}
	return nil
}

// RemoveSubscription implements alerts.Store.
func (s *Store) RemoveSubscription(ctx context.Context, id string) (bool, error) {
	v, err := s.rdb.HGet(ctx, s.alertSubsKey(), id).Result()
	if err == redis.Nil {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: read subscription: %w", err)
	}
	var sub alerts.Subscription
	if err := json.Unmarshal([]byte(v), &sub); err != nil {
		return false, fmt.Errorf("redisstore: subscription %s: %w", id, err)
	}
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.alertSubsKey(), id)
		p.SRem(ctx, s.alertAddrKey(sub.Address), id)
		return nil
	}); err != nil {
		return false, fmt.Errorf("redisstore: remove subscription: %w", err)
	}
	return true, nil
}

// Subscriptions implements alerts.Store.
func (s *Store) Subscriptions(ctx context.Context) ([]alerts.Subscription, error) {
	m, err := s.rdb.HGetAll(ctx, s.alertSubsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read subscriptions: %w", err)
	}
	out := make([]alerts.Subscription, 0, len(m))
	for id, v := range m {
		var sub alerts.Subscription
		if err := json.Unmarshal([]byte(v), &sub); err != nil {
			s.log.Warn("unreadable alert subscription skipped")
			continue
		}
		sub.ID = id
		out = append(out, sub)
	}
	slices.SortFunc(out, func(a, b alerts.Subscription) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}
