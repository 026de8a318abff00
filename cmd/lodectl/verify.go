package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

func init() {
	register("verify", "verify block <hash> (window, split, credits, on-chain commitment over the API) | proof <file> (offline)", runVerify)
}

// Exit codes of lodectl verify: 0 verified, 1 mismatch, 2 usage or a failure
// to fetch what is to be verified.
const (
	exitVerified = 0
	exitMismatch = 1
	exitError    = 2
)

func runVerify(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: lodectl verify block [flags] <hash> | lodectl verify proof <file>")
		return exitError
	}
	switch args[0] {
	case "block":
		return runVerifyBlock(args[1:], stdout, stderr)
	case "proof":
		return runVerifyProof(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "lodectl verify: unknown subcommand %q (block, proof)\n", args[0])
	return exitError
}

// runVerifyProof checks a proof file (the JSON of GET
// /api/v1/blocks/{hash}/proof) with no network and no Redis.
func runVerifyProof(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: lodectl verify proof <file>   (\"-\": standard input)")
		return exitError
	}
	var data []byte
	var err error
	if args[0] == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<30))
	} else {
		data, err = os.ReadFile(args[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "lodectl verify proof: %v\n", err)
		return exitError
	}
	p, err := window.ParseProof(data)
	if err == nil {
		err = p.Verify()
	}
	if err != nil {
		fmt.Fprintf(stdout, "MISMATCH proof %s: %v\n", proofName(p), err)
		return exitMismatch
	}
	money := "not credited yet"
	if p.Credited {
		money = fmt.Sprintf("credit %d sat of reward %d − fee %d", p.Credit, p.Reward, p.Fee)
	}
	fmt.Fprintf(stdout, "OK proof of %s in block %s: %d leaves, %s of %s units under root %s, %s\n",
		p.Address, p.Block, len(p.Leaves), p.Units, p.Total, p.Root, money)
	return exitVerified
}

func proofName(p *window.Proof) string {
	if p == nil {
		return "(unreadable)"
	}
	return fmt.Sprintf("of %q in block %s", p.Address, p.Block)
}

// blockWindowDoc is the JSON of GET /api/v1/blocks/{hash}/window.
type blockWindowDoc struct {
	Block  api.BlockWindow `json:"block"`
	Leaves []window.Leaf   `json:"leaves"`
}

func fetchWindow(ctx context.Context, client *http.Client, base, hash string) (*blockWindowDoc, error) {
	u := strings.TrimRight(base, "/") + "/api/v1/blocks/" + url.PathEscape(hash) + "/window"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s: %s", u, res.Status, strings.TrimSpace(string(body)))
	}
	var doc blockWindowDoc
	dec := json.NewDecoder(res.Body)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("GET %s: window: %w", u, err)
	}
	return &doc, nil
}

// fetchSummary reads only a block's window summary: the first NDJSON line
// of its window (or the body of a 410 for a pruned archive), without the
// leaves.
func fetchSummary(ctx context.Context, client *http.Client, base, hash string) (*api.BlockWindow, error) {
	u := strings.TrimRight(base, "/") + "/api/v1/blocks/" + url.PathEscape(hash) + "/window?format=ndjson"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusGone {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s: %s", u, res.Status, strings.TrimSpace(string(body)))
	}
	var head struct {
		Block *api.BlockWindow `json:"block"`
	}
	if err := json.NewDecoder(res.Body).Decode(&head); err != nil || head.Block == nil {
		return nil, fmt.Errorf("GET %s: no window summary (%v)", u, err)
	}
	return head.Block, nil
}

// blockGetter is the node, for the on-chain commitment.
type blockGetter interface {
	GetBlock(ctx context.Context, hash chainhash.Hash) (*wire.MsgBlock, error)
}

func runVerifyBlock(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify block", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api", "http://127.0.0.1:8080", "the pool's API base URL")
	rpcURL := fs.String("rpc", "", "node RPC URL: also check the on-chain commitment in the node's copy of the committing block")
	rpcUser := fs.String("rpc-user", "", "node RPC user")
	rpcPassEnv := fs.String("rpc-password-env", "LODE_RPC_PASSWORD", "environment variable holding the node RPC password")
	rpcCookie := fs.String("rpc-cookie", "", "Bitcoin Core cookie file instead of user/password")
	timeout := fs.Duration("timeout", 5*time.Minute, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: lodectl verify block [-api URL] [-rpc URL ...] <block hash>")
		return exitError
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var node blockGetter
	if *rpcURL != "" {
		c, err := bitcoind.New(bitcoind.Config{URL: *rpcURL, User: *rpcUser, Password: os.Getenv(*rpcPassEnv), CookieFile: *rpcCookie}, nil)
		if err != nil {
			fmt.Fprintf(stderr, "lodectl verify block: node: %v\n", err)
			return exitError
		}
		defer c.Close()
		node = c
	}
	line, err := verifyBlock(ctx, http.DefaultClient, *apiURL, fs.Arg(0), node)
	var mismatch *verifyMismatch
	switch {
	case errors.As(err, &mismatch):
		fmt.Fprintf(stdout, "MISMATCH block %s: %v\n", fs.Arg(0), mismatch.err)
		return exitMismatch
	case err != nil:
		fmt.Fprintf(stderr, "lodectl verify block: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, line)
	return exitVerified
}

// verifyMismatch marks a verification failure (as opposed to a failure to
// fetch what is verified).
type verifyMismatch struct{ err error }

func (m *verifyMismatch) Error() string { return m.err.Error() }
func (m *verifyMismatch) Unwrap() error { return m.err }

func mismatchf(format string, a ...any) error {
	return &verifyMismatch{fmt.Errorf(format, a...)}
}

// verifyBlock downloads a block's window over the API, recomputes its
// Merkle-sum tree and, once credited, the split in integer satoshis
// (payouts.Split, remainder rule included) and compares them with the
// record and the credits; with a node, it reads the commitment from the
// node's copy of the committing block and checks that it commits this
// window's recomputed root. It returns the one-line verdict.
func verifyBlock(ctx context.Context, client *http.Client, apiURL, hash string, node blockGetter) (string, error) {
	doc, err := fetchWindow(ctx, client, apiURL, hash)
	if err != nil {
		return "", err
	}
	bw := doc.Block
	if bw.Hash != hash {
		return "", mismatchf("the API answered the window of block %s", bw.Hash)
	}
	h, err := chainhash.NewHashFromStr(hash)
	if err != nil {
		return "", err
	}
	b := payouts.Block{FoundBlock: payouts.FoundBlock{Hash: *h}, Status: payouts.BlockStatus(bw.Status),
		WindowLeaves: bw.Leaves, WindowFirstSeq: bw.FirstSeq, WindowLastSeq: bw.LastSeq, Reward: bw.Reward, Fee: bw.Fee}
	if bw.Credited {
		b.Status = payouts.StatusCredited
	}
	var ok bool
	if b.WindowUnits, ok = new(big.Int).SetString(bw.Total, 10); !ok {
		return "", mismatchf("window total %q is not an integer", bw.Total)
	}
	if bw.Limit != "" {
		if b.WindowLimit, ok = new(big.Int).SetString(bw.Limit, 10); !ok {
			return "", mismatchf("window limit %q is not an integer", bw.Limit)
		}
	}
	if bw.Root != "" {
		r, err := window.ParseHash(bw.Root)
		if err != nil {
			return "", mismatchf("window root: %v", err)
		}
		b.WindowRoot = &r
	}
	if err := payouts.VerifyWindow(b, doc.Leaves, bw.Credits); err != nil {
		return "", &verifyMismatch{err}
	}
	tree, _ := window.Build(doc.Leaves) // VerifyWindow built it already
	root := tree.Root()
	verdict := fmt.Sprintf("OK block %s: %d leaves, %s units (N %s, boundary %s), root %s", hash, len(doc.Leaves), root.Sum, bw.Limit, bw.Boundary, root.Hash)
	if bw.Boundary != payouts.BoundaryExact || bw.Truncated {
		verdict += " [window does NOT provably end at the finding share: " + bw.Boundary
		if bw.Truncated {
			verdict += ", truncated"
		}
		verdict += "]"
	}
	if bw.Credited {
		verdict += fmt.Sprintf(", %d credits + fee %d = reward %d sat match the split", len(bw.Credits), bw.Fee, bw.Reward)
	} else {
		verdict += ", not credited yet"
	}
	switch {
	case bw.CommittedIn == "":
		verdict += ", root not committed on chain yet"
	case node == nil:
		verdict += ", committed in " + bw.CommittedIn + " (not checked: no -rpc)"
	default:
		if err := verifyCommitment(ctx, client, apiURL, bw, root, node); err != nil {
			return "", err
		}
		verdict += ", committed in " + bw.CommittedIn + " (checked on the node)"
	}
	return verdict, nil
}

// verifyCommitment checks that the committing block, as the node has it,
// carries a commitment to a list of windows holding this one with the root
// recomputed here.
func verifyCommitment(ctx context.Context, client *http.Client, apiURL string, bw api.BlockWindow, root window.Node, node blockGetter) error {
	committing, err := fetchSummary(ctx, client, apiURL, bw.CommittedIn)
	if err != nil {
		return fmt.Errorf("committing block: %w", err)
	}
	ch, err := chainhash.NewHashFromStr(bw.CommittedIn)
	if err != nil {
		return err
	}
	blk, err := node.GetBlock(ctx, *ch)
	if err != nil {
		return fmt.Errorf("node: block %s: %w", bw.CommittedIn, err)
	}
	var commitment *window.Commitment
	for _, out := range blk.Transactions[0].TxOut {
		if c, ok := window.ParseCommitScript(out.PkScript); ok && out.Value == 0 {
			commitment = &c
		}
	}
	if commitment == nil {
		return mismatchf("the node's block %s carries no window commitment", bw.CommittedIn)
	}
	var list []window.Committed
	found := false
	for _, c := range committing.Commits {
		bh, err := window.HexBlockHash(c.Block)
		if err != nil {
			return mismatchf("commitment list: %v", err)
		}
		r, err := window.ParseHash(c.Root)
		if err != nil {
			return mismatchf("commitment list: %v", err)
		}
		total, ok := new(big.Int).SetString(c.Total, 10)
		if !ok {
			return mismatchf("commitment list: total %q", c.Total)
		}
		if c.Block == bw.Hash {
			if r != root.Hash || total.Cmp(root.Sum) != 0 {
				return mismatchf("committed root of %s is %s (%s units), the window hashes to %s (%s units)", bw.Hash, r, total, root.Hash, root.Sum)
			}
			found = true
		}
		list = append(list, window.Committed{Block: bh, Root: r, Total: total})
	}
	if !found {
		return mismatchf("block %s's commitment list does not name %s", bw.CommittedIn, bw.Hash)
	}
	if err := commitment.Check(list); err != nil {
		return mismatchf("on-chain commitment in %s: %v", bw.CommittedIn, err)
	}
	return nil
}
