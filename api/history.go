package api

import "sync"

// History is a fixed-size ring of pool hashrate samples for the dashboard
// chart. It lives in memory: after a restart the chart starts empty and
// fills at HistoryInterval, which is acceptable for a view of the last day
// and keeps the chart free of extra Redis keys.
type History struct {
	mu     sync.Mutex
	points []HashratePoint
	next   int
	full   bool
}

// NewHistory returns a History keeping the last n samples.
func NewHistory(n int) *History {
	if n < 1 {
		n = 1
	}
	return &History{points: make([]HashratePoint, n)}
}

// Add appends a sample, dropping the oldest when full.
func (h *History) Add(p HashratePoint) {
	h.mu.Lock()
	h.points[h.next] = p
	h.next++
	if h.next == len(h.points) {
		h.next, h.full = 0, true
	}
	h.mu.Unlock()
}

// Points returns the samples, oldest first.
func (h *History) Points() []HashratePoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]HashratePoint{}, h.points[:h.next]...)
	}
	out := make([]HashratePoint, 0, len(h.points))
	out = append(out, h.points[h.next:]...)
	return append(out, h.points[:h.next]...)
}
