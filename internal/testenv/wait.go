package testenv

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds and fails the test if it does not within
// limit. Tests wait for events this way, never for a fixed time: a slow,
// loaded machine makes a test slower, not wrong. what names the event in the
// failure message.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(pause)
		// Back off to 100 ms: quick for fast events, cheap for slow ones.
		pause = min(2*pause, 100*time.Millisecond)
	}
}
