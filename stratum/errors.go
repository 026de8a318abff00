package stratum

import (
	"errors"

	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum/message"
)

// Rejections a miner is told about that are decided here; share-level ones
// (stale, duplicate, low difficulty, malformed fields) come from package
// shares as *shares.RejectError and keep their own codes.
var (
	// ErrNotSubscribed: submit before mining.subscribe (25).
	ErrNotSubscribed = errors.New("not subscribed")
	// ErrUnauthorized: the worker is not authorized on this connection, or
	// the username is not a valid payout address (24).
	ErrUnauthorized = errors.New("unauthorized worker")
	// ErrBanned: the worker or IP is banned for too many rejected shares (24).
	ErrBanned = errors.New("worker banned")
	// ErrBadParams: a request's params have the wrong shape (20).
	ErrBadParams = errors.New("invalid params")
	// ErrUnknownMethod: a method this server does not implement (20).
	ErrUnknownMethod = errors.New("method not found")
	// ErrNotRecorded: the share could not be made durable (20, our fault).
	ErrNotRecorded = errors.New("share not recorded")
)

// codeTable maps rejections to Stratum V1 codes, in the order they are
// matched. Errors carrying their own code (shares.RejectError) come next;
// anything else is 20.
var codeTable = []struct {
	err  error
	code int
}{
	{ErrNotSubscribed, message.CodeNotSubscribed},
	{ErrUnauthorized, message.CodeUnauthorized},
	{ErrBanned, message.CodeUnauthorized},
	{ErrBadParams, message.CodeOther},
	{ErrUnknownMethod, message.CodeOther},
	{ErrNotRecorded, message.CodeOther},
	{shares.ErrJobNotFound, message.CodeJobNotFound},
	{shares.ErrDuplicateShare, message.CodeDuplicate},
	{shares.ErrLowDifficulty, message.CodeLowDifficulty},
	{shares.ErrBadExtranonce2, message.CodeOther},
	{shares.ErrBadNTime, message.CodeOther},
	{shares.ErrBadVersionBits, message.CodeOther},
	{shares.ErrMalformed, message.CodeOther},
}

// coder is implemented by errors that carry their own Stratum code.
type coder interface{ Code() int }

// StratumCode returns the Stratum V1 error code for err and whether err is a
// known rejection (false → an unexpected error, sent as 20 and logged).
func StratumCode(err error) (int, bool) {
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return e.code, true
		}
	}
	var c coder
	if errors.As(err, &c) {
		if code := c.Code(); code >= message.CodeOther && code <= message.CodeNotSubscribed {
			return code, true
		}
	}
	return message.CodeOther, false
}
