package stratum

import (
	"context"
	"sync"

	"github.com/lode-pool/lode/shares"
)

// MemoryRecorder is an in-memory Recorder for tests and benchmarks. It keeps
// every share it is given.
type MemoryRecorder struct {
	mu     sync.Mutex
	shares []shares.Share
	// Fail, when set, is returned by Record instead of storing the share.
	fail error
}

var _ Recorder = (*MemoryRecorder)(nil)

// Record stores s.
func (m *MemoryRecorder) Record(ctx context.Context, s shares.Share) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.shares = append(m.shares, s)
	return nil
}

// SetFailure makes later Record calls fail with err (nil restores).
func (m *MemoryRecorder) SetFailure(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// Shares returns a copy of the recorded shares.
func (m *MemoryRecorder) Shares() []shares.Share {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]shares.Share(nil), m.shares...)
}

// Len returns the number of recorded shares.
func (m *MemoryRecorder) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.shares)
}
