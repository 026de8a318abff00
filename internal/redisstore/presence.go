package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/economics"
)

// Connected time and user agents of workers, written by the stratum
// frontends (stratum.PresenceRecorder, through cmd/lode) every few seconds,
// never on the share path, and read by package economics (EconomicsStats):
// a worker's hashrate is its work divided by the time it was connected.

// luaPackedW reads and writes the packed worker field of a minute or slot
// bucket, "w:<worker>" = "Σd|Σd²|n|max d[|connected s]" (docs/redis.md).
// A plain number is a field written before the packing: Σd, taken as one
// share of that difficulty.
const luaPackedW = `
local function unpackw(v)
  if not v then return 0, 0, 0, 0, 0 end
  local d, q, n, m, c = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|?([^|]*)$')
  if not d then
    local x = tonumber(v) or 0
    return x, x * x, 1, x, 0
  end
  return tonumber(d), tonumber(q), tonumber(n), tonumber(m), tonumber(c) or 0
end
local function packw(d, q, n, m, c)
  local s = string.format('%.17g|%.17g|%d|%.17g', d, q, n, m)
  if c > 0 then s = s .. string.format('|%d', c) end
  return s
end
`

// presenceScript adds connected seconds to the packed worker fields of one
// bucket hash. KEYS[1]: the bucket; ARGV[1]: its TTL (s), then pairs of
// field and seconds. The shares' part of a packed field is kept as it is
// (no number is parsed or formatted again but the seconds).
var presenceScript = redis.NewScript(luaPackedW + `
for i = 2, #ARGV, 2 do
  local f, add = ARGV[i], tonumber(ARGV[i + 1])
  local cur = redis.call('HGET', KEYS[1], f)
  local head, c
  if cur then head, c = string.match(cur, '^([^|]*|[^|]*|[^|]*|[^|]*)|?([^|]*)$') end
  if not cur then
    redis.call('HSET', KEYS[1], f, '0|0|0|0|' .. add)
  elseif head then
    redis.call('HSET', KEYS[1], f, head .. '|' .. string.format('%d', (tonumber(c) or 0) + add))
  else -- written before the packing
    local d, q, n, m, cc = unpackw(cur)
    redis.call('HSET', KEYS[1], f, packw(d, q, n, m, cc + add))
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 0
`)

// WorkerPresence is one worker's connected time since a frontend's
// previous report (stratum.Presence).
type WorkerPresence struct {
	Worker, Address string
	// UserAgent is what its miner sent in mining.subscribe ("" none).
	UserAgent string
	// Difficulty, when > 0, is its current share difficulty: the
	// worker's "diff" unless a share set it (a worker without accepted
	// shares still gets a meaningful upper bound).
	Difficulty float64
	// Spans are disjoint [from, to) intervals it was connected.
	Spans [][2]time.Time
}

// RecordPresence adds the workers' connected seconds to their minute and
// 10-minute buckets (one script call per bucket hash, so every call stays
// in one Cluster slot) and sets each worker's user agent ("agent" of its
// worker hash) and, unless a share did, its difficulty ("diff"), in one
// pipeline. Each frontend reports its own sessions:
// a worker connected to two frontends at once counts twice, which the
// reader caps at the bucket's width.
func (s *Store) RecordPresence(ctx context.Context, ps []WorkerPresence) error {
	type bucket struct {
		key string
		ttl int64
	}
	secs := map[bucket]map[string]int64{} // per bucket hash, per field
	var buckets []bucket                  // in first-use order
	addTo := func(b bucket, field string, d int64) {
		m, ok := secs[b]
		if !ok {
			m = map[string]int64{}
			buckets = append(buckets, b)
			secs[b] = m
		}
		m[field] += d
	}
	for i := range ps {
		p := &ps[i]
		tag, field := shardTag(p.Worker), "w:"+p.Worker
		for _, sp := range p.Spans {
			economics.SplitConnected(sp[0], sp[1], func(minute int64, d time.Duration) {
				sec := int64(d / time.Second)
				if sec <= 0 {
					return
				}
				addTo(bucket{key: s.hashrateKey(tag, minute), ttl: int64(minuteTTL / time.Second)}, field, sec)
				addTo(bucket{key: s.hashrateSlotKey(tag, minute*60/slotSeconds), ttl: int64(statsTTL / time.Second)}, field, sec)
			})
		}
	}
	calls := make([][]any, len(buckets)) // KEYS and ARGV of each bucket's call
	for i, b := range buckets {
		m := secs[b]
		fields := make([]string, 0, len(m))
		for f := range m {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		args := make([]any, 0, 1+2*len(fields))
		args = append(args, strconv.FormatInt(b.ttl, 10))
		for _, f := range fields {
			args = append(args, f, strconv.FormatInt(m[f], 10))
		}
		calls[i] = append([]any{b.key}, args...)
	}
	run := func(p redis.Pipeliner, c []any) *redis.Cmd {
		return presenceScript.EvalSha(ctx, p, []string{c[0].(string)}, c[1:]...)
	}
	cmds := make([]*redis.Cmd, len(calls))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = run(p, c)
		}
		for i := range ps {
			w := &ps[i]
			if w.UserAgent == "" && !(w.Difficulty > 0) {
				continue
			}
			k := s.workerKey(w.Worker)
			if w.UserAgent != "" {
				p.HSet(ctx, k, workerAgentFld, w.UserAgent)
			}
			if w.Difficulty > 0 {
				p.HSetNX(ctx, k, workerDiffField, strconv.FormatFloat(w.Difficulty, 'g', -1, 64))
			}
			p.Expire(ctx, k, statsTTL)
		}
		return nil
	})
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// First use on this server: load the script and run again the
		// calls that did not run (the others must not add twice).
		if lerr := presenceScript.Load(ctx, s.rdb).Err(); lerr != nil {
			return fmt.Errorf("redisstore: load connected-time script: %w", lerr)
		}
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
					run(p, c)
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("redisstore: record connected time: %w", err)
	}
	return nil
}
