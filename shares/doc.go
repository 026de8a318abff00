// Package shares is the share hot path: a Validator turns a job, a
// connection's Session state and a mining.submit into an accepted share, a
// block candidate, or a typed rejection. Block candidates go to package
// blocks, which journals, submits and records them.
//
// Per job, NewWork precomputes once what every share of that job needs (the
// coinbase midstate, the padded coinbase tail, the merkle branch as bytes,
// the header template, the network target as fixed-width integers). Per
// share, Session.Submit copies the extranonces into one or two coinbase
// blocks, hashes them, folds the merkle branch and hashes the header with
// the raw SHA-256 compression function of internal/sha256x, and compares the
// hash with the share and network targets as 256-bit integers. A valid share
// does not allocate.
//
// Use:
//
//	v, _ := shares.New(shares.Config{})        // once per process
//	w, _ := v.NewWork(job)                      // once per job, shared by all sessions
//	sess, _ := v.NewSession(extranonce1, mask)  // once per connection
//	sess.SetDifficulty(d)                       // mining.set_difficulty
//	sess.AddJob(w)                              // mining.notify sent to this connection
//	var res shares.Result
//	err := sess.SubmitParams(params, &res)      // mining.submit; shares.Code(err) for the reply
//	if err == nil && res.Block { tracker.Submit(ctx, sess.Candidate(&res)) } // package blocks
//
// It does not speak Stratum (package stratum decodes messages and maps the
// errors here to replies) nor store shares (package shares/ledger).
//
// # Errors
//
// Rejections are *RejectError sentinels: ErrJobNotFound (21), ErrDuplicateShare
// (22), ErrLowDifficulty (23), ErrBadExtranonce2, ErrBadNTime,
// ErrBadVersionBits and ErrMalformed (20). Code maps any error to its Stratum
// code (20 for anything that is not a rejection).
//
// # Concurrency
//
// Validator and Work are immutable and shared. A Session belongs to one
// connection's goroutine; sessions share nothing, so validation takes no lock.
package shares
