package shares

import (
	"errors"
	"fmt"
	"testing"
)

// TestRejectErrors checks the message and Stratum code of every rejection,
// bare and wrapped, the way btcd's blockchain/error_test.go checks its codes.
func TestRejectErrors(t *testing.T) {
	tests := []struct {
		err  error
		msg  string
		code int
	}{
		{ErrJobNotFound, "job not found", 21},
		{ErrDuplicateShare, "duplicate share", 22},
		{ErrLowDifficulty, "low difficulty share", 23},
		{ErrBadExtranonce2, "invalid extranonce2 size", 20},
		{ErrBadNTime, "ntime out of range", 20},
		{ErrBadVersionBits, "invalid version bits", 20},
		{ErrMalformed, "malformed submit", 20},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.msg {
				t.Errorf("Error() = %q, want %q", got, tc.msg)
			}
			if got := Code(tc.err); got != tc.code {
				t.Errorf("Code = %d, want %d", got, tc.code)
			}
			wrapped := fmt.Errorf("verify share: %w", tc.err)
			if got := Code(wrapped); got != tc.code {
				t.Errorf("Code(wrapped) = %d, want %d", got, tc.code)
			}
			if !errors.Is(wrapped, tc.err) {
				t.Errorf("errors.Is(wrapped) = false")
			}
			for _, other := range tests {
				if other.err != tc.err && errors.Is(tc.err, other.err) {
					t.Errorf("%v matches %v", tc.err, other.err)
				}
			}
		})
	}
	if got := Code(errors.New("redis down")); got != 20 {
		t.Errorf("Code(infrastructure error) = %d, want 20", got)
	}
	if got := Code(nil); got != 20 {
		t.Errorf("Code(nil) = %d, want 20", got)
	}
}
