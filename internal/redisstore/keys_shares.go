package redisstore

import (
	"strconv"
	"strings"
)

// Keys of the share ledger (owner: shares/ledger through this file). The
// schema is documented in docs/redis.md; keep the two in step.
//
// Accounting keys carry the {acct} hash tag (the block-found snapshot of
// payouts reads them in the same script). Statistics are spread over slots
// so a Redis Cluster shares their cost among its masters: the keys of one
// worker or one payout address carry the tag of its statistics shard
// (statsShardTag), the pool-wide ones {stats}; a statistics batch is one
// script call per shard it touches.

// statsTag is the hash tag of the pool-wide statistics.
const statsTag = "{stats}"

// statsShards is the number of statistics shards. Their tags sit in evenly
// spaced ranges of the 16384 Cluster slots (statsShardTags), so a cluster
// whose masters own contiguous, equal slot ranges (redis-cli --cluster
// create) gets 32/masters shards each, rounded. Changing it moves every
// worker's and address's statistics (readers would look elsewhere).
const statsShards = 32

// statsShardTags are the shards' hash tags: shard i is "{stats:n}" for the
// smallest n whose Cluster slot (CRC16 mod 16384) lies in the i-th 32nd of
// the slot space. A table, not a formula, so the slots are spread evenly;
// TestStatsShardTags checks them against the rule.
var statsShardTags = [statsShards]string{
	"{stats:63}", "{stats:70}", "{stats:52}", "{stats:41}", "{stats:3}", "{stats:140}", "{stats:23}", "{stats:30}",
	"{stats:62}", "{stats:71}", "{stats:53}", "{stats:40}", "{stats:2}", "{stats:141}", "{stats:22}", "{stats:31}",
	"{stats:61}", "{stats:72}", "{stats:50}", "{stats:43}", "{stats:1}", "{stats:142}", "{stats:21}", "{stats:32}",
	"{stats:60}", "{stats:73}", "{stats:51}", "{stats:42}", "{stats:0}", "{stats:143}", "{stats:20}", "{stats:33}",
}

// statsShard is the shard of a worker (its full username) or a payout
// address: FNV-1a (32 bit) of the name, modulo statsShards. A worker and
// its address may be in different shards, so one address with thousands of
// workers (a farm) is spread too.
func statsShard(name string) int {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return int(h % statsShards)
}

// shardTag is the hash tag of name's statistics shard.
func shardTag(name string) string { return statsShardTags[statsShard(name)] }

// StatsShardTag returns the hash tag ("{stats:n}") of the statistics shard
// that keeps the keys of a worker (full username) or a payout address, for
// tools and tests that read those keys directly (docs/redis.md).
func StatsShardTag(name string) string { return shardTag(name) }

// clusterSlot is Redis Cluster's slot of a hash tag's content (CRC16-XMODEM
// mod 16384), for the test of statsShardTags.
func clusterSlot(tag string) int {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}

// windowKey is the PPLNS window: a list of "seq|address|units", newest first.
func (s *Store) windowKey() string { return s.key(acctTag, "window") }

// windowTotalKey is Σ units of the window (decimal string).
func (s *Store) windowTotalKey() string { return s.key(acctTag, "window", "total") }

// windowLimitKey is the window size N (units) the window was last trimmed to.
func (s *Store) windowLimitKey() string { return s.key(acctTag, "window", "limit") }

// roundKey is a hash: payout address → Σ units since the last block.
func (s *Store) roundKey() string { return s.key(acctTag, "round") }

// roundTotalKey is Σ units of the round over all addresses.
func (s *Store) roundTotalKey() string { return s.key(acctTag, "round", "total") }

// acctAppliedKey is the highest batch sequence applied to the accounting
// keys for one recorder instance.
func (s *Store) acctAppliedKey(instance string) string {
	return s.key(acctTag, "applied", instance)
}

// statsAppliedKey is the same high-water mark for the statistics keys of
// one tag (statsTag or a shard's): each shard's script call keeps its own.
func (s *Store) statsAppliedKey(tag, instance string) string {
	return s.key(tag, "applied", instance)
}

// poolStatsKey is a hash of pool-wide counters (never expires).
func (s *Store) poolStatsKey() string { return s.key(statsTag, "pool") }

// hashrateKey is the hashrate bucket of one unix minute under tag: a hash of
// Σ difficulty per "w:<worker>" and "m:<address>" of the shard's workers
// and addresses (a shard's tag), or "pool" (statsTag); kept two hours (for
// the 10-minute and 1-hour hashrates).
func (s *Store) hashrateKey(tag string, minute int64) string {
	return s.key(tag, "hr", strconv.FormatInt(minute, 10))
}

// hashrateSlotKey is the same for one 10-minute slot (unix seconds / 600),
// kept 25 hours (for the 24-hour hashrate): a worker costs 144 fields a day
// here instead of 1440 minute fields.
func (s *Store) hashrateSlotKey(tag string, slot int64) string {
	return s.key(tag, "hr10", strconv.FormatInt(slot, 10))
}

// workerKey is a hash of one worker's counters (full username).
func (s *Store) workerKey(worker string) string { return s.key(shardTag(worker), "worker", worker) }

// minerKey is a hash: worker name ("" for the bare address) → last share
// time (unix ms) of one payout address.
func (s *Store) minerKey(address string) string { return s.key(shardTag(address), "miner", address) }

// recentKey is a capped list of the latest shares of one address, newest
// first: "unixms|worker name|difficulty|hash difficulty".
func (s *Store) recentKey(address string) string { return s.key(shardTag(address), "recent", address) }

// workerKeyPattern matches every worker key of every shard (SCAN MATCH).
func (s *Store) workerKeyPattern() string { return s.prefix + ":{stats:*}:worker:*" }

// workerOfKey returns the worker name of a key matched by workerKeyPattern.
func (s *Store) workerOfKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, s.prefix+":{stats:")
	if !ok {
		return "", false
	}
	_, worker, ok := strings.Cut(rest, "}:worker:")
	return worker, ok
}
