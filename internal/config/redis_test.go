package config

import (
	"strings"
	"testing"
)

// TestRedisTopology checks the keys that choose how lode reaches Redis
// (docs/redis.md, "Topologies").
func TestRedisTopology(t *testing.T) {
	base := "roles: [api]\n"
	for _, tc := range []struct {
		yaml string
		want string // "" valid
	}{
		{"redis: {mode: mesh}", `redis.mode: want one of single, cluster, sentinel, got "mesh"`},
		{"redis: {mode: cluster}", "redis.addrs: required with mode cluster"},
		{"redis: {mode: cluster, addrs: ['127.0.0.1:7000', nohost]}", `redis.addrs[1]: want host:port, got "nohost"`},
		{"redis: {mode: cluster, addrs: ['127.0.0.1:7000'], db: 2}", "redis.db: must be 0 with mode cluster"},
		{"redis: {mode: cluster, addrs: ['127.0.0.1:7000', '127.0.0.1:7001'], min_replicas_acked: 1}", ""},
		{"redis: {mode: sentinel, addrs: ['127.0.0.1:26379']}", "redis.sentinel_master: required with mode sentinel"},
		{"redis: {mode: sentinel, addrs: ['127.0.0.1:26379'], sentinel_master: lode, replica_ack_timeout: 300ms}", ""},
		{"redis: {min_replicas_acked: -1}", "redis.min_replicas_acked: must be 0 (no wait) or more, got -1"},
		{"redis: {replica_ack_timeout: 5s}", "redis.replica_ack_timeout: must be above 0 and below the ledger's write timeout"},
		{"redis: {sentinel_password: {env: A, file: B}}", "redis.sentinel_password: set env or file, not both"},
	} {
		_, err := Parse(strings.NewReader(base + tc.yaml + "\n"))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	cfg, err := Parse(strings.NewReader(base + "redis: {mode: sentinel, addrs: ['127.0.0.1:26379'], sentinel_master: lode, sentinel_password: {env: LODE_TEST_SURELY_UNSET_SENTINEL_PW}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.ResolveSecrets(); err == nil || !strings.Contains(err.Error(), "redis.sentinel_password") {
		t.Errorf("unset sentinel password: %v", err)
	}
}
