package bitcoind

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/blocktemplate"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultLongPollTimeout = 2 * time.Minute
)

// ErrNotFound is wrapped when the node does not know the requested block.
var ErrNotFound = errors.New("not found")

// Config says how to reach one node.
type Config struct {
	// URL is the node's RPC endpoint, http://host:port (https for TLS).
	URL string
	// User and Password authenticate with rpcuser/rpcpassword.
	User     string
	Password string
	// CookieFile is Bitcoin Core's .cookie ("user:password"), used when
	// User is empty. It is read by New and re-read when the node answers
	// 401 (Core writes a new cookie on every start).
	CookieFile string
	// Timeout bounds every call except long polls (default 10 s).
	Timeout time.Duration
	// LongPollTimeout bounds a getblocktemplate long poll (default 2 min);
	// the caller simply polls again after it.
	LongPollTimeout time.Duration
}

// Validate checks cfg.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("rpc url %q: %w", c.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("rpc url %q: scheme must be http or https", c.URL)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("rpc url %q: want http://host:port", c.URL)
	}
	if c.User == "" && c.CookieFile == "" {
		return errors.New("rpc credentials: set user/password or a cookie file")
	}
	if c.Timeout < 0 || c.LongPollTimeout < 0 {
		return errors.New("rpc timeouts must not be negative")
	}
	return nil
}

type lane int

const (
	laneMain lane = iota
	laneSubmit
	laneLongPoll
	laneCount
)

// Client is a node RPC client; see the package doc.
type Client struct {
	cfg    Config
	host   string
	tls    bool
	logger *zap.Logger

	mu     sync.Mutex
	user   string
	pass   string
	lanes  [laneCount]*rpcclient.Client
	closed bool
}

var _ blocktemplate.TemplateSource = (*Client)(nil)

// New checks cfg, reads the cookie file if one is configured, and returns a
// Client. No request is made. A nil logger logs nothing.
func New(cfg Config, logger *zap.Logger) (*Client, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bitcoind config: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.LongPollTimeout == 0 {
		cfg.LongPollTimeout = DefaultLongPollTimeout
	}
	u, _ := url.Parse(cfg.URL)
	c := &Client{cfg: cfg, host: u.Host, tls: u.Scheme == "https", logger: logger, user: cfg.User, pass: cfg.Password}
	if cfg.User == "" {
		if err := c.readCookie(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readCookie loads user and password from the cookie file. Callers hold mu
// or own c exclusively.
func (c *Client) readCookie() error {
	raw, err := os.ReadFile(c.cfg.CookieFile)
	if err != nil {
		return fmt.Errorf("read rpc cookie: %w", err)
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(raw)), ":")
	if !ok || user == "" {
		return fmt.Errorf("read rpc cookie %s: want user:password", c.cfg.CookieFile)
	}
	c.user, c.pass = user, pass
	return nil
}

// Close shuts the underlying clients down. Calls after Close fail.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for i, rc := range c.lanes {
		if rc != nil {
			rc.Shutdown()
			c.lanes[i] = nil
		}
	}
}

// get returns the lane's rpcclient, creating it when needed.
func (c *Client) get(l lane) (*rpcclient.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("bitcoind client is closed")
	}
	if c.lanes[l] == nil {
		rc, err := rpcclient.New(&rpcclient.ConnConfig{
			Host: c.host, User: c.user, Pass: c.pass,
			HTTPPostMode: true, DisableTLS: !c.tls,
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("rpc client: %w", err)
		}
		c.lanes[l] = rc
	}
	return c.lanes[l], nil
}

// discard drops rc from its lane (if still there) so the next call starts a
// fresh rpcclient; reread also reloads the cookie first.
func (c *Client) discard(l lane, rc *rpcclient.Client, reread bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lanes[l] == rc {
		c.lanes[l] = nil
	}
	if reread && c.cfg.User == "" {
		if err := c.readCookie(); err != nil {
			c.logger.Warn("rpc cookie re-read failed", zap.Error(err))
		}
	}
	// Shutdown fails queued requests at once; the in-flight one finishes
	// (or not) in the background.
	go rc.Shutdown()
}

func isUnauthorized(err error) bool {
	return err != nil && strings.Contains(err.Error(), "status code: 401")
}

// callLane runs fn on the lane's rpcclient, bounded by ctx and timeout. On 401
// with a cookie file it re-reads the cookie and tries once more.
func callLane[T any](ctx context.Context, c *Client, l lane, timeout time.Duration, method string, fn func(*rpcclient.Client) (T, error)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		rc, err := c.get(l)
		if err != nil {
			return zero, fmt.Errorf("%s: %w", method, err)
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		type result struct {
			v   T
			err error
		}
		ch := make(chan result, 1)
		go func() {
			v, err := fn(rc)
			ch <- result{v, err}
		}()
		select {
		case r := <-ch:
			cancel()
			if isUnauthorized(r.err) {
				c.discard(l, rc, true)
				if attempt == 0 && c.cfg.User == "" {
					continue
				}
			}
			if r.err != nil {
				return zero, fmt.Errorf("%s: %w", method, r.err)
			}
			return r.v, nil
		case <-cctx.Done():
			err := cctx.Err()
			cancel()
			c.discard(l, rc, false)
			return zero, fmt.Errorf("%s: %w", method, err)
		}
	}
}

// GetBlockTemplate asks for a template with the segwit rule and returns
// the raw result object. With a longPollID it is a long poll: the node
// answers when the tip or the mempool changes (bounded by LongPollTimeout).
func (c *Client) GetBlockTemplate(ctx context.Context, longPollID string) ([]byte, error) {
	req := map[string]any{
		"rules":        []string{"segwit"},
		"capabilities": []string{"coinbasevalue", "longpoll", "proposal"},
	}
	l, timeout := laneMain, c.cfg.Timeout
	if longPollID != "" {
		req["longpollid"] = longPollID
		l, timeout = laneLongPoll, c.cfg.LongPollTimeout
	}
	param, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("getblocktemplate: %w", err)
	}
	res, err := callLane(ctx, c, l, timeout, "getblocktemplate", func(rc *rpcclient.Client) (json.RawMessage, error) {
		return rc.RawRequest("getblocktemplate", []json.RawMessage{param})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// GetBestBlockHash returns the tip's hash (internal order).
func (c *Client) GetBestBlockHash(ctx context.Context) (chainhash.Hash, error) {
	h, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "getbestblockhash", func(rc *rpcclient.Client) (*chainhash.Hash, error) {
		return rc.GetBestBlockHash()
	})
	if err != nil {
		return chainhash.Hash{}, err
	}
	return *h, nil
}

// GetBlockCount returns the height of the tip.
func (c *Client) GetBlockCount(ctx context.Context) (int64, error) {
	return callLane(ctx, c, laneMain, c.cfg.Timeout, "getblockcount", func(rc *rpcclient.Client) (int64, error) {
		return rc.GetBlockCount()
	})
}

// GetBlockHash returns the hash of the main-chain block at height.
func (c *Client) GetBlockHash(ctx context.Context, height int64) (chainhash.Hash, error) {
	h, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "getblockhash", func(rc *rpcclient.Client) (*chainhash.Hash, error) {
		return rc.GetBlockHash(height)
	})
	if err != nil {
		return chainhash.Hash{}, mapNotFound(err)
	}
	return *h, nil
}

// GetBlock returns the block with the given hash (internal order).
func (c *Client) GetBlock(ctx context.Context, hash chainhash.Hash) (*wire.MsgBlock, error) {
	b, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "getblock", func(rc *rpcclient.Client) (*wire.MsgBlock, error) {
		return rc.GetBlock(&hash)
	})
	if err != nil {
		return nil, mapNotFound(err)
	}
	return b, nil
}

// GetBlockHeader returns the header of the block with the given hash
// (internal order) if the node has the block, on any branch: the cheap way
// to ask whether a node has a block (GetBlock downloads all of it).
func (c *Client) GetBlockHeader(ctx context.Context, hash chainhash.Hash) (*wire.BlockHeader, error) {
	h, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "getblockheader", func(rc *rpcclient.Client) (*wire.BlockHeader, error) {
		return rc.GetBlockHeader(&hash)
	})
	if err != nil {
		return nil, mapNotFound(err)
	}
	return h, nil
}

// BlockInfo is where a block stands in the node's view of the chain.
type BlockInfo struct {
	Hash          chainhash.Hash
	Height        int64
	Confirmations int64 // as the node reports it (Core: -1 off the main chain)
	InMainChain   bool  // the main chain holds this hash at Height
}

// GetBlockInfo returns the height and confirmations of a block, and whether
// it is in the main chain (checked with getblockhash at its height, since
// btcd and Core report side-chain blocks differently: Core gives -1
// confirmations, btcd refuses verbose getblock, in which case the height is
// found from the block's nearest main-chain ancestor and Confirmations is
// -1 as Core would say).
func (c *Client) GetBlockInfo(ctx context.Context, hash chainhash.Hash) (BlockInfo, error) {
	res, err := c.getBlockVerbose(ctx, hash)
	if isNotInMainChain(err) {
		height, err := c.sideChainHeight(ctx, hash)
		if err != nil {
			return BlockInfo{}, err
		}
		return BlockInfo{Hash: hash, Height: height, Confirmations: -1}, nil
	}
	if err != nil {
		return BlockInfo{}, err
	}
	info := BlockInfo{Hash: hash, Height: res.Height, Confirmations: res.Confirmations}
	if res.Confirmations > 0 {
		main, err := c.GetBlockHash(ctx, res.Height)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return BlockInfo{}, err
		}
		info.InMainChain = err == nil && main == hash
	}
	return info, nil
}

func (c *Client) getBlockVerbose(ctx context.Context, hash chainhash.Hash) (*btcjson.GetBlockVerboseResult, error) {
	res, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "getblock", func(rc *rpcclient.Client) (*btcjson.GetBlockVerboseResult, error) {
		return rc.GetBlockVerbose(&hash)
	})
	return res, mapNotFound(err)
}

// maxSideChainWalk bounds the walk back to the main chain.
const maxSideChainWalk = 1000

// sideChainHeight finds a side-chain block's height by walking its headers
// back to a main-chain ancestor.
func (c *Client) sideChainHeight(ctx context.Context, hash chainhash.Hash) (int64, error) {
	cur := hash
	for steps := int64(0); steps < maxSideChainWalk; steps++ {
		hdr, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "getblockheader", func(rc *rpcclient.Client) (*wire.BlockHeader, error) {
			return rc.GetBlockHeader(&cur)
		})
		if err != nil {
			return 0, mapNotFound(err)
		}
		cur = hdr.PrevBlock
		res, err := c.getBlockVerbose(ctx, cur)
		if isNotInMainChain(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return res.Height + steps + 1, nil
	}
	return 0, fmt.Errorf("block %s: no main-chain ancestor within %d blocks", hash, maxSideChainWalk)
}

// isNotInMainChain recognises btcd's refusal to describe a side-chain block.
func isNotInMainChain(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not in the main chain")
}

// SubmitBlock sends a block. reason is "" when the node accepted it,
// otherwise the node's answer ("duplicate", "inconclusive", "high-hash",
// "rejected: …", or the message of an RPC error such as a decode failure).
// err is only for transport failures and timeouts, after which the block
// may or may not have reached the node.
func (c *Client) SubmitBlock(ctx context.Context, block *wire.MsgBlock) (reason string, err error) {
	var buf bytes.Buffer
	buf.Grow(block.SerializeSize())
	if err := block.Serialize(&buf); err != nil {
		return "", fmt.Errorf("submitblock: serialize: %w", err)
	}
	return c.SubmitBlockBytes(ctx, buf.Bytes())
}

// SubmitBlockBytes is SubmitBlock for a block already serialized (what
// blocktemplate.Job.BlockBytes assembles): nothing is decoded or encoded
// again on the way to the node but the hex.
func (c *Client) SubmitBlockBytes(ctx context.Context, raw []byte) (reason string, err error) {
	param, _ := json.Marshal(hex.EncodeToString(raw))
	res, err := callLane(ctx, c, laneSubmit, c.cfg.Timeout, "submitblock", func(rc *rpcclient.Client) (json.RawMessage, error) {
		return rc.RawRequest("submitblock", []json.RawMessage{param})
	})
	if err != nil {
		var rpcErr *btcjson.RPCError
		if errors.As(err, &rpcErr) {
			return rpcErr.Message, nil
		}
		return "", err
	}
	trimmed := bytes.TrimSpace(res)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(trimmed, &s); err != nil {
		return string(trimmed), nil
	}
	if s == "" {
		return "", nil
	}
	return s, nil
}

// mapNotFound wraps ErrNotFound around the node's "block not found" and
// "height out of range" errors.
func mapNotFound(err error) error {
	var rpcErr *btcjson.RPCError
	if errors.As(err, &rpcErr) && (rpcErr.Code == btcjson.ErrRPCBlockNotFound || rpcErr.Code == btcjson.ErrRPCOutOfRange || rpcErr.Code == btcjson.ErrRPCInvalidParameter) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
