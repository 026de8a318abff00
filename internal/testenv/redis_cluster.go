package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisCluster is a Redis Cluster of real redis-server processes owned by a
// test: masters, each with replicas, on free loopback ports. Every node runs
// with appendonly and fsync always (the tests SIGKILL every copy of a batch;
// with everysec a slow disk lets Redis reply before its AOF write, see
// docs/redis.md) and a short cluster-node-timeout (1 s) so a killed master is
// replaced within seconds.
type RedisCluster struct {
	Nodes []*Redis
	t     testing.TB
}

// Cluster timing: failure detection after nodeTimeout, promotion shortly
// after. The waits below are bounds, not expectations.
const (
	clusterNodeTimeout = 1000 // ms
	clusterUpLimit     = 30 * time.Second
	promotionLimit     = 30 * time.Second
)

// StartRedisCluster starts masters × (1 + replicas) cluster-enabled
// redis-servers, joins them with `redis-cli --cluster create` and waits until
// every node reports cluster_state:ok and every replica's link to its master
// is up. The processes are SIGKILLed when the test ends (or when the test
// binary dies: Pdeathsig).
func StartRedisCluster(t testing.TB, masters, replicas int) *RedisCluster {
	t.Helper()
	cli := Binary(t, "redis-cli", "install it with `apt-get install -y redis-tools` (make test does this)")
	c := &RedisCluster{t: t}
	n := masters * (1 + replicas)
	for range n {
		c.Nodes = append(c.Nodes, StartRedis(t,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(clusterNodeTimeout),
			// The bus port is chosen like the data port: port+10000 may lie
			// in the ephemeral range or above 65535.
			"--cluster-port", strconv.Itoa(FreePort(t)),
			// A replica that lost its master for long still fails over:
			// the test, not the validity factor, decides.
			"--cluster-replica-validity-factor", "0",
			"--appendfsync", "always",
		))
	}
	args := []string{"--cluster", "create"}
	for _, r := range c.Nodes {
		args = append(args, r.Addr)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	cmd := exec.Command(cli, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := waitFor(clusterUpLimit, c.healthy); err != nil {
		t.Fatalf("testenv: redis cluster did not come up: %v", err)
	}
	return c
}

// Addrs returns every node's address (seed addresses for a cluster client).
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, r := range c.Nodes {
		out[i] = r.Addr
	}
	return out
}

// healthy is nil once every running node sees cluster_state:ok and every
// replica's master link is up.
func (c *RedisCluster) healthy() error {
	for _, r := range c.Nodes {
		if r.cmd == nil {
			continue // killed by the test
		}
		info, err := redisString(r.Addr, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: %w", r.Addr, err)
		}
		if st := infoField(info, "cluster_state"); st != "ok" {
			return fmt.Errorf("%s: cluster_state %q", r.Addr, st)
		}
		repl, err := redisString(r.Addr, "INFO", "replication")
		if err != nil {
			return fmt.Errorf("%s: %w", r.Addr, err)
		}
		if infoField(repl, "role") == "slave" && infoField(repl, "master_link_status") != "up" {
			return fmt.Errorf("%s: replica link %q", r.Addr, infoField(repl, "master_link_status"))
		}
	}
	return nil
}

// WaitHealthy waits until the running nodes agree the cluster is ok and
// every replica is linked (after a failover or a restart).
func (c *RedisCluster) WaitHealthy() {
	c.t.Helper()
	if err := waitFor(promotionLimit, c.healthy); err != nil {
		c.t.Fatalf("testenv: redis cluster not healthy: %v", err)
	}
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr string
	masterID string // "-" for a master
	master   bool
	failed   bool
	slots    [][2]int
}

func (c *RedisCluster) nodesView() ([]clusterNode, error) {
	var lastErr error
	for _, r := range c.Nodes {
		if r.cmd == nil {
			continue
		}
		s, err := redisString(r.Addr, "CLUSTER", "NODES")
		if err != nil {
			lastErr = err
			continue
		}
		return parseClusterNodes(s), nil
	}
	return nil, fmt.Errorf("no node answers CLUSTER NODES: %v", lastErr)
}

func parseClusterNodes(s string) []clusterNode {
	var out []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := clusterNode{id: f[0], addr: addr, masterID: f[3],
			master: strings.Contains(f[2], "master"),
			failed: strings.Contains(f[2], "fail")}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, _ := strconv.Atoi(lo)
			b, _ := strconv.Atoi(hi)
			n.slots = append(n.slots, [2]int{a, b})
		}
		out = append(out, n)
	}
	return out
}

// KeySlot returns the cluster slot of key (CLUSTER KEYSLOT on a live node).
func (c *RedisCluster) KeySlot(key string) int {
	c.t.Helper()
	for _, r := range c.Nodes {
		if r.cmd == nil {
			continue
		}
		v, err := RedisDo(r.Addr, "CLUSTER", "KEYSLOT", key)
		if err == nil {
			return int(v.(int64))
		}
	}
	c.t.Fatal("testenv: no cluster node answers CLUSTER KEYSLOT")
	return 0
}

// MasterFor returns the node that serves key's slot as a master, as the
// live nodes see it.
func (c *RedisCluster) MasterFor(key string) *Redis {
	c.t.Helper()
	slot := c.KeySlot(key)
	r, err := c.masterForSlot(slot)
	if err != nil {
		c.t.Fatalf("testenv: %v", err)
	}
	return r
}

func (c *RedisCluster) masterForSlot(slot int) (*Redis, error) {
	nodes, err := c.nodesView()
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if !n.master || n.failed {
			continue
		}
		for _, sr := range n.slots {
			if slot >= sr[0] && slot <= sr[1] {
				for _, r := range c.Nodes {
					if r.Addr == n.addr {
						return r, nil
					}
				}
				return nil, fmt.Errorf("slot %d served by unknown node %s", slot, n.addr)
			}
		}
	}
	return nil, fmt.Errorf("no live master serves slot %d", slot)
}

// KillMasterFor SIGKILLs the master serving key's slot and returns it (Restart
// brings it back as a replica of whichever node was promoted).
func (c *RedisCluster) KillMasterFor(key string) *Redis {
	c.t.Helper()
	m := c.MasterFor(key)
	m.Stop()
	return m
}

// WaitPromotion waits until a node other than old serves key's slot as a
// master and the live nodes report cluster_state:ok, and returns it.
func (c *RedisCluster) WaitPromotion(key string, old *Redis) *Redis {
	c.t.Helper()
	slot := c.KeySlot(key)
	var promoted *Redis
	err := waitFor(promotionLimit, func() error {
		r, err := c.masterForSlot(slot)
		if err != nil {
			return err
		}
		if r == old {
			return fmt.Errorf("slot %d still served by the killed %s", slot, old.Addr)
		}
		role, err := redisString(r.Addr, "INFO", "replication")
		if err != nil {
			return err
		}
		if infoField(role, "role") != "master" {
			return fmt.Errorf("%s not master yet", r.Addr)
		}
		for _, n := range c.Nodes {
			if n.cmd == nil {
				continue
			}
			info, err := redisString(n.Addr, "CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if st := infoField(info, "cluster_state"); st != "ok" {
				return fmt.Errorf("%s: cluster_state %q", n.Addr, st)
			}
		}
		promoted = r
		return nil
	})
	if err != nil {
		c.t.Fatalf("testenv: no promotion after killing %s: %v", old.Addr, err)
	}
	return promoted
}

// Log returns a node's log file (for failure messages).
func (r *Redis) Log() string {
	b, _ := os.ReadFile(r.Dir + "/redis.log")
	return string(b)
}

// ReplicasOf returns the nodes the live cluster lists as replicas of m.
func (c *RedisCluster) ReplicasOf(m *Redis) []*Redis {
	c.t.Helper()
	s, err := redisString(m.Addr, "CLUSTER", "MYID")
	if err != nil {
		c.t.Fatalf("testenv: CLUSTER MYID on %s: %v", m.Addr, err)
	}
	view, err := c.nodesView()
	if err != nil {
		c.t.Fatalf("testenv: %v", err)
	}
	var out []*Redis
	for _, n := range view {
		if n.masterID != s {
			continue
		}
		for _, r := range c.Nodes {
			if r.Addr == n.addr {
				out = append(out, r)
			}
		}
	}
	return out
}
