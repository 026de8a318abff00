package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// SentinelMaster is the master name the Sentinel setup monitors.
const SentinelMaster = "lode"

// RedisSentinel is a Sentinel-managed Redis owned by a test: one primary,
// replicas, and three Sentinels (Debian's redis-sentinel) with quorum 2 and
// a 1 s down-after period, so a killed primary is replaced within seconds.
type RedisSentinel struct {
	// Servers are the data nodes; Servers[0] starts as the primary.
	Servers   []*Redis
	Sentinels []*Redis
	t         testing.TB
}

// StartRedisSentinel starts a primary with replicas and three Sentinels and
// waits until every Sentinel knows the primary, every replica and the other
// Sentinels (without that a failover cannot start). Everything is SIGKILLed
// when the test (or the test binary) ends.
func StartRedisSentinel(t testing.TB, replicas int) *RedisSentinel {
	t.Helper()
	bin := Binary(t, "redis-sentinel", "install it with `apt-get install -y redis-sentinel` (make test does this)")
	s := &RedisSentinel{t: t}
	// fsync always (StartRedis's default), as on the cluster: the tests
	// SIGKILL every copy of a batch (docs/redis.md).
	primary := StartRedis(t)
	s.Servers = append(s.Servers, primary)
	for range replicas {
		s.Servers = append(s.Servers, StartRedis(t,
			"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port())))
	}
	for range 3 {
		s.Sentinels = append(s.Sentinels, startSentinel(t, bin, primary))
	}
	err := waitFor(clusterUpLimit, func() error {
		for _, r := range s.Servers[1:] {
			info, err := redisString(r.Addr, "INFO", "replication")
			if err != nil {
				return err
			}
			if infoField(info, "master_link_status") != "up" {
				return fmt.Errorf("replica %s not linked", r.Addr)
			}
		}
		for _, sn := range s.Sentinels {
			v, err := RedisDo(sn.Addr, "SENTINEL", "REPLICAS", SentinelMaster)
			if err != nil {
				return err
			}
			if n := len(v.([]any)); n != replicas {
				return fmt.Errorf("sentinel %s knows %d replicas", sn.Addr, n)
			}
			v, err = RedisDo(sn.Addr, "SENTINEL", "SENTINELS", SentinelMaster)
			if err != nil {
				return err
			}
			if n := len(v.([]any)); n != len(s.Sentinels)-1 {
				return fmt.Errorf("sentinel %s knows %d other sentinels", sn.Addr, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: sentinel setup did not settle: %v", err)
	}
	return s
}

func startSentinel(t testing.TB, bin string, primary *Redis) *Redis {
	t.Helper()
	r := &Redis{Dir: t.TempDir(), bin: bin, t: t, ready: "+monitor master"}
	for attempt := 1; ; attempt++ {
		r.Addr = addr(FreePort(t))
		_, port, _ := net.SplitHostPort(r.Addr)
		conf := filepath.Join(r.Dir, "sentinel.conf")
		// Sentinel rewrites its file as it learns the topology.
		body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s 1000\n"+
			"sentinel failover-timeout %s 5000\n"+
			"sentinel parallel-syncs %s 1\n",
			port, r.Dir, filepath.Join(r.Dir, "redis.log"),
			SentinelMaster, primary.Port(), SentinelMaster, SentinelMaster, SentinelMaster)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		r.args = []string{conf}
		err := r.start()
		if err == nil {
			break
		}
		r.Stop()
		if attempt == 3 {
			t.Fatalf("testenv: %v", err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

// SentinelAddrs returns the Sentinels' addresses (for a failover client).
func (s *RedisSentinel) SentinelAddrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, r := range s.Sentinels {
		out[i] = r.Addr
	}
	return out
}

// Primary returns the data node the Sentinels currently name as primary.
func (s *RedisSentinel) Primary() *Redis {
	s.t.Helper()
	r, err := s.primary()
	if err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
	return r
}

func (s *RedisSentinel) primary() (*Redis, error) {
	var lastErr error
	for _, sn := range s.Sentinels {
		if sn.cmd == nil {
			continue
		}
		v, err := RedisDo(sn.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
		if err != nil {
			lastErr = err
			continue
		}
		hp, ok := v.([]any)
		if !ok || len(hp) != 2 {
			return nil, fmt.Errorf("sentinel %s: master address %v", sn.Addr, v)
		}
		a := net.JoinHostPort(hp[0].(string), hp[1].(string))
		for _, r := range s.Servers {
			if r.Addr == a {
				return r, nil
			}
		}
		return nil, fmt.Errorf("sentinel names unknown primary %s", a)
	}
	return nil, fmt.Errorf("no sentinel answers: %v", lastErr)
}

// KillPrimary SIGKILLs the current primary and returns it.
func (s *RedisSentinel) KillPrimary() *Redis {
	s.t.Helper()
	p := s.Primary()
	p.Stop()
	return p
}

// WaitPromotion waits until every live Sentinel names a primary other than
// old and that server answers as a master, and returns it.
func (s *RedisSentinel) WaitPromotion(old *Redis) *Redis {
	s.t.Helper()
	var promoted *Redis
	err := waitFor(promotionLimit, func() error {
		var seen *Redis
		for _, sn := range s.Sentinels {
			if sn.cmd == nil {
				continue
			}
			v, err := RedisDo(sn.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
			if err != nil {
				return err
			}
			hp := v.([]any)
			a := net.JoinHostPort(hp[0].(string), hp[1].(string))
			if a == old.Addr {
				return fmt.Errorf("sentinel %s still names %s", sn.Addr, a)
			}
			for _, r := range s.Servers {
				if r.Addr == a {
					if seen != nil && seen != r {
						return fmt.Errorf("sentinels disagree: %s and %s", seen.Addr, r.Addr)
					}
					seen = r
				}
			}
		}
		if seen == nil {
			return fmt.Errorf("no sentinel names a known primary")
		}
		info, err := redisString(seen.Addr, "INFO", "replication")
		if err != nil {
			return err
		}
		if infoField(info, "role") != "master" {
			return fmt.Errorf("%s not master yet", seen.Addr)
		}
		promoted = seen
		return nil
	})
	if err != nil {
		s.t.Fatalf("testenv: no promotion after killing %s: %v", old.Addr, err)
	}
	return promoted
}

var ackedOffset = regexp.MustCompile(`,offset=(\d+),`)

// WaitReplicas waits until the primary has n replicas online (after a
// failover the other replicas are re-pointed by the Sentinels; a restarted
// old primary is turned into a replica).
func (s *RedisSentinel) WaitReplicas(n int) {
	s.t.Helper()
	err := waitFor(promotionLimit, func() error {
		p, err := s.primary()
		if err != nil {
			return err
		}
		info, err := redisString(p.Addr, "INFO", "replication")
		if err != nil {
			return err
		}
		// connected_slaves counts a replica still in its first sync too,
		// and after a diskless sync a replica is "online" before the
		// primary streams it anything: that starts with the replica's first
		// acknowledgement (up to a second later), and until then WAIT
		// counts it out. An acknowledged offset above 0 means it came.
		got := 0
		for _, l := range strings.Split(info, "\n") {
			if !strings.HasPrefix(l, "slave") || !strings.Contains(l, ",state=online,") {
				continue
			}
			if m := ackedOffset.FindStringSubmatch(l); m != nil && m[1] != "0" {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("primary %s has %d replicas online, want %d", p.Addr, got, n)
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}
