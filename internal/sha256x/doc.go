// Package sha256x exposes the SHA-256 compression function over 64-byte blocks
// with an explicit chaining state, plus the few double-SHA-256 shapes the share
// hot path needs (a padded tail from a midstate, a merkle branch fold).
//
// crypto/sha256 hides the compression function and costs a fixed overhead per
// Sum256 call (digest setup, padding, copying), which is comparable to the
// compression itself when hashing 64- and 80-byte messages. Here the caller
// pads once, keeps midstates, and the whole merkle fold runs in one call.
//
// On amd64 with the SHA extensions (SHA-NI, detected with CPUID) the work runs
// in assembly; elsewhere, or with the purego build tag, in portable Go. Both
// paths are tested against crypto/sha256.
//
// States are eight uint32 words: the big-endian words of a digest. A digest's
// bytes are obtained with State.PutBytes. Inputs that are not a whole number of
// blocks are truncated to whole blocks; nothing here panics on input.
package sha256x
