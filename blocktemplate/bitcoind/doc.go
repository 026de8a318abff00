// Package bitcoind is the node adapter: the only importer of btcd's
// rpcclient. It talks JSON-RPC over HTTP POST to Bitcoin Core or btcd and
// adds what rpcclient lacks: a context and a timeout on every call, and a
// cookie file that is re-read when the node answers 401.
//
// It implements blocktemplate.TemplateSource (getblocktemplate with segwit
// rules and longpoll, getbestblockhash) and the calls the rest of the pool
// needs from a node: submitblock (returning the node's reason string, not an
// error, for a rejected block), getblockcount, getblockhash, getblock and a
// block's confirmations.
//
// # Errors
//
// Transport failures and timeouts are returned as errors wrapping the
// context error when the deadline passed. ErrNotFound is wrapped when the
// node does not know a block. A rejected block is not an error: SubmitBlock
// returns the node's reason.
//
// # Concurrency
//
// A Client is safe for concurrent use. rpcclient sends the HTTP requests of
// one client strictly one after another, so the Client keeps three of them
// (lanes): one for ordinary calls, one for submitblock, so a found block
// never waits behind a slow template, and one for long polls, which can
// block for minutes. A call that times out discards its lane's rpcclient (a
// fresh one serves the next call) because everything queued behind the
// stuck request would time out too.
package bitcoind
