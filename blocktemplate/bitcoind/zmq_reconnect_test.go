//go:build e2e

package bitcoind

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/testenv"
)

// TestManagerZMQReconnect: Core restarts (its ZMQ notifier goes away and
// comes back on the same address, and it writes a new cookie); the Manager
// subscribes again and its client re-reads the cookie on the 401, with
// nothing but ZMQ to notice blocks.
func TestManagerZMQReconnect(t *testing.T) {
	node := testenv.StartNode(t, testenv.KindCore)
	c := newClient(t, node)
	m, jobs := startManager(t, blocktemplate.ManagerConfig{
		Source: c, Builder: testBuilder(t, node), PollInterval: -1, RefreshInterval: -1, ZMQAddress: node.ZMQHashBlock(),
		RetryMax: time.Second,
	})
	nextJob(t, jobs)
	second, _ := generateUntilJob(t, node, jobs)

	node.Restart()
	j, tip := generateUntilJob(t, node, jobs)
	checkTipJob(t, m, second, j, tip)
}

// TestCookieRereadAfterRestart: Core writes a new cookie on every start; a
// client made with the old one gets 401 once, re-reads the file and goes
// on, without a restart of its own.
func TestCookieRereadAfterRestart(t *testing.T) {
	node := testenv.StartNode(t, testenv.KindCore)
	_, _, cookie := node.RPCAuth()
	core, logs := observer.New(zap.DebugLevel)
	c, err := New(Config{URL: node.RPCURL(), CookieFile: cookie}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	node.Generate(2)
	if n, err := c.GetBlockCount(ctx); err != nil || n != 2 {
		t.Fatalf("before restart: %d %v", n, err)
	}
	old, err := os.ReadFile(cookie)
	if err != nil {
		t.Fatal(err)
	}
	node.Restart()
	if n, err := c.GetBlockCount(ctx); err != nil || n != 2 {
		t.Fatalf("after restart: %d %v", n, err)
	}
	if logs.FilterMessage("rpc cookie re-read failed").Len() != 0 {
		t.Fatal("cookie re-read failed")
	}
	// The old cookie no longer works: the client got through with the new.
	user, pass, _ := strings.Cut(strings.TrimSpace(string(old)), ":")
	stale, err := New(Config{URL: node.RPCURL(), User: user, Password: pass}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if _, err := stale.GetBlockCount(ctx); !isUnauthorized(err) {
		t.Fatalf("the cookie from before the restart: %v, want 401", err)
	}
}

// TestManagerSurvivesNodeDown: the node is down for 30 s while miners keep
// working on the last job: it stays valid, the Manager keeps retrying
// without publishing anything, and once the node is back (Core on its
// chain with a new cookie; btcd on a fresh regtest chain) the next block's
// job arrives. Both nodes at once, each its own.
func TestManagerSurvivesNodeDown(t *testing.T) {
	for _, kind := range testenv.NodeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			node := testenv.StartNode(t, kind)
			node.Generate(1)
			c := newClient(t, node)
			ctx := testCtx(t)
			m, jobs := startManager(t, blocktemplate.ManagerConfig{
				Source: c, Builder: testBuilder(t, node), PollInterval: 200 * time.Millisecond, RefreshInterval: -1,
				LongPoll: true, ZMQAddress: node.ZMQHashBlock(), RetryMax: time.Second,
			})
			last := nextJob(t, jobs)

			// Miners: look the job up as share validation does, all along.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var lookups, misses int
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
					if _, ok := m.Lookup(last.ID); !ok {
						misses++
					}
					lookups++
				}
			}()

			node.Stop()
			down := time.Now()
			for time.Since(down) < 30*time.Second {
				if err := m.Refresh(ctx); err == nil {
					t.Fatal("refresh succeeded with the node down")
				}
				select {
				case j := <-jobs:
					t.Fatalf("job %s published with the node down", j.ID)
				case <-time.After(time.Second):
				}
			}
			close(stop)
			wg.Wait()
			if misses != 0 || lookups == 0 || m.Current() != last {
				t.Fatalf("while down: %d of %d lookups missed the last job; current changed: %v", misses, lookups, m.Current() != last)
			}

			node.Restart()
			tip := *node.Generate(1)[0]
			deadline := time.After(30 * time.Second)
			for {
				select {
				case j := <-jobs:
					if j.PrevHash != tip {
						continue // btcd's fresh chain: genesis first
					}
					if !j.CleanJobs {
						t.Fatalf("job for the new tip is not clean")
					}
					if _, ok := m.Lookup(last.ID); ok {
						t.Fatal("the job from before the outage is still valid")
					}
					return
				case <-deadline:
					t.Fatal("no job for the new tip within 30 s of the node's return")
				}
			}
		})
	}
}
