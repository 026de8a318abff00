// Package blocktemplate turns a node's getblocktemplate answer into Stratum
// work: it parses and checks the template, builds the coinbase (BIP34 height,
// pool tag, extranonce slot, payout output, witness commitment), computes the
// merkle branch once per template, and publishes immutable Jobs.
//
// It does not talk to sockets or Redis. Node access lives in the
// blocktemplate/bitcoind adapter; share validation lives in package shares.
package blocktemplate
