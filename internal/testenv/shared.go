package testenv

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// SharedNodes starts at most one node of each kind for a whole test binary,
// so a package's tests do not each pay for a node start. It is safe for
// tests that run one after another (no t.Parallel), leave the node running,
// and do not depend on absolute heights or an empty mempool; a test that
// stops, restarts or reconfigures a node starts its own with StartNode.
//
// Declare one per package and close it from TestMain:
//
//	var nodes testenv.SharedNodes
//
//	func TestMain(m *testing.M) { code := m.Run(); nodes.Close(); os.Exit(code) }
type SharedNodes struct {
	mu    sync.Mutex
	nodes map[string]Node
	owner *ownerTB
}

// Node returns the shared node of kind bound to t, starting it on first
// use. A start failure fails t.
func (s *SharedNodes) Node(t testing.TB, kind string) Node {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nodes[kind]; ok {
		return n.For(t)
	}
	if s.owner == nil {
		s.owner = &ownerTB{}
	}
	n, err := s.start(kind)
	if err != nil {
		t.Fatalf("testenv: shared %s node: %v", kind, err)
	}
	if s.nodes == nil {
		s.nodes = map[string]Node{}
	}
	s.nodes[kind] = n
	return n.For(t)
}

func (s *SharedNodes) start(kind string) (n Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(ownerFailure)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	return StartNode(s.owner, kind), nil
}

// ForEach runs fn as a subtest for every kind of NodeKinds with the shared
// node of that kind.
func (s *SharedNodes) ForEach(t *testing.T, fn func(t *testing.T, node Node)) {
	t.Helper()
	for _, kind := range NodeKinds {
		t.Run(kind, func(t *testing.T) { fn(t, s.Node(t, kind)) })
	}
}

// Close stops the shared nodes and removes their directories.
func (s *SharedNodes) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != nil {
		s.owner.cleanup()
	}
	s.nodes, s.owner = nil, nil
}

// ownerTB is the testing.TB a shared node is started with: it outlives
// every test. Only the methods the node starters use are implemented; a
// fatal error panics with ownerFailure, which SharedNodes.Node reports on
// the asking test.
type ownerTB struct {
	testing.TB // nil: any other method panics
	mu         sync.Mutex
	cleanups   []func()
	dirs       []string
}

type ownerFailure string

func (f ownerFailure) Error() string { return string(f) }

func (o *ownerTB) Helper()                         {}
func (o *ownerTB) Name() string                    { return "testenv-shared" }
func (o *ownerTB) Logf(format string, args ...any) {}
func (o *ownerTB) Fatalf(format string, args ...any) {
	panic(ownerFailure(fmt.Sprintf(format, args...)))
}
func (o *ownerTB) Fatal(args ...any) { panic(ownerFailure(fmt.Sprint(args...))) }

func (o *ownerTB) TempDir() string {
	dir, err := os.MkdirTemp("", "lode-shared-node-")
	if err != nil {
		o.Fatalf("temp dir: %v", err)
	}
	o.mu.Lock()
	o.dirs = append(o.dirs, dir)
	o.mu.Unlock()
	return dir
}

func (o *ownerTB) Cleanup(f func()) {
	o.mu.Lock()
	o.cleanups = append(o.cleanups, f)
	o.mu.Unlock()
}

// cleanup runs the registered cleanups, newest first, then removes the
// directories.
func (o *ownerTB) cleanup() {
	o.mu.Lock()
	fs, dirs := o.cleanups, o.dirs
	o.cleanups, o.dirs = nil, nil
	o.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}
