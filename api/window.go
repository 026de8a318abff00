package api

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/payouts/window"
)

// The verifiable PPLNS endpoints (docs/verify.md, docs/api.md):
//
//	GET /api/v1/blocks/{hash}/window          the block's archived window
//	GET /api/v1/blocks/{hash}/proof?address=  one address's proof
//
// They are served when Config.Blocks also implements WindowReader.

// ErrWindowPruned is returned (wrapped) by a WindowReader whose block's
// window archive was deleted by the retention; the endpoints answer 410.
var ErrWindowPruned = errors.New("window archive pruned")

// WindowReader reads a block's window archive. The BlockLister the daemon
// wires implements it; its errors wrap ErrNotFound for an unknown block and
// ErrWindowPruned for a deleted archive.
type WindowReader interface {
	// BlockWindow returns the block's window summary and credits.
	BlockWindow(ctx context.Context, hash string) (BlockWindow, error)
	// WindowLeaves calls fn with each leaf, oldest first.
	WindowLeaves(ctx context.Context, hash string, fn func(window.Leaf) error) error
}

// WindowProver is a WindowReader that can make one address's proof from a
// proof index, reading only the groups of leaves that hold the address's
// leaves (internal/redisstore). ok is false when the block has no index
// (recorded before it): the proof is then made from the whole window. The
// proof's money fields are left for the API; contributors is the number of
// addresses in the window.
type WindowProver interface {
	WindowProof(ctx context.Context, hash, address string) (p *window.Proof, contributors int, ok bool, err error)
}

// BlockWindow is a block's PPLNS window summary: everything needed, with the
// leaves, to recompute its Merkle-sum root and the split (docs/verify.md).
type BlockWindow struct {
	Hash   string `json:"hash"`
	Height int64  `json:"height"`
	Status string `json:"status"`
	// FindingSeq is the sequence of the share that found the block;
	// Boundary "exact" when the window ends at it, "late" otherwise
	// (docs/verify.md); Truncated when fewer than Limit units were left
	// before it.
	FindingSeq string `json:"finding_seq"`
	Boundary   string `json:"boundary"`
	Truncated  bool   `json:"truncated"`
	FirstSeq   string `json:"first_seq"`
	LastSeq    string `json:"last_seq"`
	// Limit is N, Total the window's units (the root's sum), both decimal
	// difficulty units; Leaves the number of leaves; Root the Merkle-sum
	// root (hex, "" until computed).
	Limit  string `json:"limit"`
	Total  string `json:"total"`
	Leaves int64  `json:"leaves"`
	Root   string `json:"root"`
	// Money, integer satoshis, set once credited: the reward paying the
	// pool, the fee, and each address's credit.
	Credited bool             `json:"credited"`
	Reward   int64            `json:"reward"`
	Fee      int64            `json:"fee"`
	Credits  map[string]int64 `json:"credits"`
	// CommittedIn is the block whose coinbase commits this window's root
	// ("" while pending); Commits the windows this block's coinbase
	// commits, in order.
	CommittedIn string            `json:"committed_in"`
	Commits     []CommittedWindow `json:"commits,omitempty"`
	Pruned      bool              `json:"pruned"`
}

// CommittedWindow is one window in an on-chain commitment.
type CommittedWindow struct {
	Block string `json:"block"` // hash, RPC display order
	Root  string `json:"root"`
	Total string `json:"total"`
}

// windowLeafLine is one NDJSON line of the window stream.
type windowLeafLine struct {
	Index int `json:"index"`
	window.Leaf
}

func (s *Server) windowReader(w http.ResponseWriter) (WindowReader, bool) {
	wr, ok := s.cfg.Blocks.(WindowReader)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "block windows are not available in this process")
	}
	return wr, ok
}

// blockHash reads and checks the {hash} path value: 64 hex digits.
func blockHash(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := strings.ToLower(r.PathValue("hash"))
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		writeError(w, http.StatusBadRequest, "hash: must be 64 hex digits")
		return "", false
	}
	return h, true
}

func (s *Server) windowError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "block not found")
	case errors.Is(err, ErrWindowPruned):
		writeError(w, http.StatusGone, "the window archive of this block was deleted by the retention; its root and total remain in /window's summary")
	default:
		s.internal(w, what, err)
	}
}

// handleBlockWindow streams the window: with "?format=ndjson" (or Accept:
// application/x-ndjson) the summary object on the first line, then one
// leaf per line; otherwise one JSON object {"block": summary, "leaves":
// [...]}, written leaf by leaf so a large window is never held in memory.
func (s *Server) handleBlockWindow(w http.ResponseWriter, r *http.Request) {
	wr, ok := s.windowReader(w)
	if !ok {
		return
	}
	hash, ok := blockHash(w, r)
	if !ok {
		return
	}
	bw, err := wr.BlockWindow(r.Context(), hash)
	if err != nil {
		s.windowError(w, "block window", err)
		return
	}
	ndjson := r.URL.Query().Get("format") == "ndjson" || strings.Contains(r.Header.Get("Accept"), "application/x-ndjson")
	if bw.Pruned {
		// The summary (root, total, bounds, commitments) outlives the
		// archive: 410 with it, in either format.
		writeJSON(w, http.StatusGone, map[string]any{"block": bw, "error": "window archive pruned"})
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	n := 0
	var write func(window.Leaf) error
	if ndjson {
		h.Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		if err := enc.Encode(map[string]any{"block": bw}); err != nil {
			return
		}
		write = func(l window.Leaf) error {
			n++
			return enc.Encode(windowLeafLine{Index: n - 1, Leaf: l})
		}
	} else {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		head, _ := json.Marshal(bw)
		if _, err := w.Write(append(append([]byte(`{"block":`), head...), []byte(",\n\"leaves\":[\n")...)); err != nil {
			return
		}
		write = func(l window.Leaf) error {
			if n > 0 {
				if _, err := w.Write([]byte(",")); err != nil {
					return err
				}
			}
			n++
			return enc.Encode(l)
		}
	}
	err = wr.WindowLeaves(r.Context(), hash, write)
	if err != nil {
		// The status line is sent: end the body so it does not parse as a
		// complete window (the JSON form is left unterminated; NDJSON gets an
		// error line), and log.
		s.log.Error("window stream failed", zap.String("block", hash), zap.Int("leaves_sent", n), zap.Error(err))
		if ndjson {
			_ = enc.Encode(errorBody{Error: "window read failed after " + itoa(n) + " leaves"})
		}
		return
	}
	if !ndjson {
		_, _ = w.Write([]byte("]}\n"))
	}
}

// handleBlockProof answers one address's proof (window.Proof): its leaves
// with their Merkle-sum paths, its units, the total, and the money.
func (s *Server) handleBlockProof(w http.ResponseWriter, r *http.Request) {
	wr, ok := s.windowReader(w)
	if !ok {
		return
	}
	hash, ok := blockHash(w, r)
	if !ok {
		return
	}
	addr := r.URL.Query().Get("address")
	if addr == "" || len(addr) > 100 {
		writeError(w, http.StatusBadRequest, "address: must be 1 to 100 characters")
		return
	}
	if s.cfg.CanonicalAddress != nil {
		c, err := s.cfg.CanonicalAddress(addr)
		if err != nil {
			writeError(w, http.StatusBadRequest, "address: "+err.Error())
			return
		}
		addr = c
	} else if s.cfg.ValidAddress != nil {
		if err := s.cfg.ValidAddress(addr); err != nil {
			writeError(w, http.StatusBadRequest, "address: "+err.Error())
			return
		}
	}
	bw, err := wr.BlockWindow(r.Context(), hash)
	if err == nil && bw.Pruned {
		err = ErrWindowPruned
	}
	if err != nil {
		s.windowError(w, "block proof", err)
		return
	}
	p, err := s.proofs.proof(proofKey{hash: hash, address: addr, root: bw.Root, credited: bw.Credited}, func() (*window.Proof, error) {
		// Not cancelled with this request: others may be waiting for the
		// same proof.
		ctx := context.WithoutCancel(r.Context())
		if pr, ok := wr.(WindowProver); ok {
			// From the proof index: the address's groups of leaves only.
			p, contributors, ok, err := pr.WindowProof(ctx, hash, addr)
			if err != nil {
				return nil, leavesError{err}
			}
			if ok {
				return finishProof(bw, p, contributors)
			}
		}
		// Streamed: a mainnet window has ~5·10^5 leaves; the builder
		// keeps O(log n) nodes and the address's paths.
		pb := window.NewProofBuilder(bw.Hash, addr)
		addrs := map[string]bool{}
		if err := wr.WindowLeaves(ctx, hash, func(l window.Leaf) error {
			addrs[l.Address] = true
			return pb.Add(l)
		}); err != nil {
			return nil, leavesError{err}
		}
		p, err := pb.Proof()
		if err != nil {
			return nil, err
		}
		return finishProof(bw, p, len(addrs))
	})
	var le leavesError
	switch {
	case errors.As(err, &le):
		s.windowError(w, "block proof", le.err)
		return
	case err != nil:
		s.internal(w, "block proof", err)
		return
	}
	if len(p.Leaves) == 0 {
		writeError(w, http.StatusNotFound, "the address has no share in this block's window")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// leavesError is a failure to read a window's leaves (answered as
// windowError says), as opposed to a proof that does not check.
type leavesError struct{ err error }

func (e leavesError) Error() string { return e.err.Error() }
func (e leavesError) Unwrap() error { return e.err }

// BuildProof makes the proof of addr from a block's window summary and its
// leaves, with the money from the summary. It checks that the leaves hash
// to the summary's root: a proof of another tree is never served.
func BuildProof(bw BlockWindow, leaves []window.Leaf, addr string) (*window.Proof, error) {
	pb := window.NewProofBuilder(bw.Hash, addr)
	for _, l := range leaves {
		if err := pb.Add(l); err != nil {
			return nil, err
		}
	}
	p, err := pb.Proof()
	if err != nil {
		return nil, err
	}
	return finishProof(bw, p, len(contributors(leaves)))
}

// finishProof completes a built proof: it checks the root against the
// summary and adds the money.
func finishProof(bw BlockWindow, p *window.Proof, contributors int) (*window.Proof, error) {
	if p.Root.String() != bw.Root || p.Total != bw.Total {
		return nil, errors.New("the archived window does not hash to the block's recorded root")
	}
	p.Contributors = int64(contributors)
	if bw.Credited {
		p.Credited, p.Reward, p.Fee, p.Credit = true, bw.Reward, bw.Fee, bw.Credits[p.Address]
		units, _ := window.ParseUnits(p.Units)
		total, _ := window.ParseUnits(p.Total)
		if total != nil && total.Sign() > 0 {
			base := new(big.Int).Mul(big.NewInt(bw.Reward-bw.Fee), units)
			base.Quo(base, total)
			p.Remainder = p.Credit - base.Int64()
		}
	}
	return p, nil
}

func contributors(leaves []window.Leaf) map[string]bool {
	m := map[string]bool{}
	for _, l := range leaves {
		m[l.Address] = true
	}
	return m
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
