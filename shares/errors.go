package shares

import "errors"

// Stratum V1 error codes a share rejection maps to (stratum-v1.md §5).
const (
	CodeOther          = 20
	CodeJobNotFound    = 21
	CodeDuplicate      = 22
	CodeLowDifficulty  = 23
	codeUnknownDefault = CodeOther
)

// RejectError is a reason a share is refused that the miner is told about.
// The package's sentinels are *RejectError values; match them with errors.Is
// and read the Stratum code with Code.
type RejectError struct {
	code   int
	reason string
}

// Error returns the human-readable reason, sent as the Stratum error message.
func (e *RejectError) Error() string { return e.reason }

// Code returns the Stratum V1 error code for the rejection.
func (e *RejectError) Code() int { return e.code }

// Rejections. The validator returns them unwrapped on the hot path (so a
// rejected share allocates nothing); ParseSubmit wraps ErrMalformed with the
// offending field.
var (
	// ErrJobNotFound: the job id is unknown to the session or the job is stale
	// (dropped by clean_jobs / a new block, or aged out).
	ErrJobNotFound = &RejectError{CodeJobNotFound, "job not found"}
	// ErrDuplicateShare: the session already submitted this exact share.
	ErrDuplicateShare = &RejectError{CodeDuplicate, "duplicate share"}
	// ErrLowDifficulty: the hash is above the share target.
	ErrLowDifficulty = &RejectError{CodeLowDifficulty, "low difficulty share"}
	// ErrBadExtranonce2: extranonce2 does not have the job's size.
	ErrBadExtranonce2 = &RejectError{CodeOther, "invalid extranonce2 size"}
	// ErrBadNTime: ntime is before the template's mintime or too far after its curtime.
	ErrBadNTime = &RejectError{CodeOther, "ntime out of range"}
	// ErrBadVersionBits: version bits outside the negotiated version-rolling mask.
	ErrBadVersionBits = &RejectError{CodeOther, "invalid version bits"}
	// ErrMalformed: wrong parameter count, bad hex, or a field of the wrong length.
	ErrMalformed = &RejectError{CodeOther, "malformed submit"}
)

// Code maps an error returned by this package to its Stratum V1 error code.
// Errors that are not rejections (infrastructure failures) map to 20.
func Code(err error) int {
	var re *RejectError
	if errors.As(err, &re) {
		return re.code
	}
	return codeUnknownDefault
}
