package stratum

import (
	"sync"

	"github.com/lode-pool/lode/shares"
)

// MemoryRecorder is an in-memory Recorder for tests and benchmarks. It keeps
// every share it is given and answers at once, or, while held (Hold), when
// the test releases the held shares.
type MemoryRecorder struct {
	mu     sync.Mutex
	shares []shares.Share
	// fail, when set, is the outcome of later shares instead of storing them.
	fail error
	hold bool
	held []heldShare
}

type heldShare struct {
	s     shares.Share
	done  shares.RecordDone
	token uint64
}

var _ Recorder = (*MemoryRecorder)(nil)

// RecordAsync stores s and calls done (on the caller's goroutine unless
// held).
func (m *MemoryRecorder) RecordAsync(s *shares.Share, done shares.RecordDone, token uint64) error {
	m.mu.Lock()
	if m.hold {
		m.held = append(m.held, heldShare{*s, done, token})
		m.mu.Unlock()
		return nil
	}
	err := m.fail
	if err == nil {
		m.shares = append(m.shares, *s)
	}
	m.mu.Unlock()
	done.ShareDone(token, err)
	return nil
}

// SetFailure makes later shares fail with err (nil restores).
func (m *MemoryRecorder) SetFailure(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// Hold keeps later shares waiting (not durable, unanswered) until Release.
func (m *MemoryRecorder) Hold() {
	m.mu.Lock()
	m.hold = true
	m.mu.Unlock()
}

// Held returns how many shares wait for Release.
func (m *MemoryRecorder) Held() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.held)
}

// Release stops holding and completes the held shares with err (nil:
// stored and durable), last to first like the ledger completes a batch.
func (m *MemoryRecorder) Release(err error) {
	m.mu.Lock()
	held := m.held
	m.held, m.hold = nil, false
	if err == nil {
		for _, h := range held {
			m.shares = append(m.shares, h.s)
		}
	}
	m.mu.Unlock()
	for i := len(held) - 1; i >= 0; i-- {
		held[i].done.ShareDone(held[i].token, err)
	}
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
