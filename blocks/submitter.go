package blocks

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/shares"
)

// Node is a node blocks are submitted to. blocktemplate/bitcoind.Client
// implements it. Methods must be safe for concurrent use.
type Node interface {
	// SubmitBlockBytes sends a serialized block: reason is "" when the
	// node accepted it, otherwise its answer ("duplicate", "inconclusive",
	// "high-hash", …); err is for transport failures, after which the
	// block may or may not have reached the node.
	SubmitBlockBytes(ctx context.Context, raw []byte) (reason string, err error)
	// GetBlockHeader returns the header of the block with this hash
	// (internal order) if the node has the block, on any branch.
	GetBlockHeader(ctx context.Context, hash chainhash.Hash) (*wire.BlockHeader, error)
	// GetBlockHash returns the main-chain block hash at height.
	GetBlockHash(ctx context.Context, height int64) (chainhash.Hash, error)
	// GetBlockCount returns the main chain's tip height.
	GetBlockCount(ctx context.Context) (int64, error)
}

// NamedNode is a Node with the name used in logs and answers.
type NamedNode struct {
	Name string
	Node Node
}

// Answer classifies a node's response to submitblock.
type Answer int

// Answers, in stratum-v1.md §11 terms.
const (
	AnswerAccepted       Answer = iota // null: the node took the block
	AnswerDuplicate                    // the node already had it
	AnswerInconclusive                 // valid so far but not on the node's best chain (yet)
	AnswerHighHash                     // proof of work does not meet the target
	AnswerRejected                     // any other reject reason
	AnswerTransportError               // no answer (after retries)
)

var answerNames = [...]string{"accepted", "duplicate", "inconclusive", "high-hash", "rejected", "transport-error"}

func (a Answer) String() string {
	if a >= 0 && int(a) < len(answerNames) {
		return answerNames[a]
	}
	return fmt.Sprintf("Answer(%d)", int(a))
}

// classify maps a submitblock reason string to an Answer.
func classify(reason string) Answer {
	r := strings.ToLower(reason)
	switch {
	case r == "":
		return AnswerAccepted
	case strings.Contains(r, "duplicate"), strings.Contains(r, "already have"):
		return AnswerDuplicate
	case strings.Contains(r, "inconclusive"):
		return AnswerInconclusive
	case strings.Contains(r, "high-hash"), strings.Contains(r, "higher than expected"):
		return AnswerHighHash
	}
	return AnswerRejected
}

// NodeAnswer is what one node said about one block.
type NodeAnswer struct {
	Node      string
	Answer    Answer
	Reason    string // the node's reason string ("" when accepted)
	Err       error  // the last transport error, for AnswerTransportError
	Attempts  int    // submitblock calls made
	Confirmed bool   // the node returned the block when asked for it by hash
}

// Report is the outcome of submitting one block to every node.
type Report struct {
	Hash       chainhash.Hash // internal order
	Height     int64
	Answers    []NodeAnswer // one per configured node, in configuration order
	Confirmed  bool         // at least one node has the block
	JournalErr error        // the journal write failed (the block was submitted anyway)
}

// SubmitterConfig configures a Submitter.
type SubmitterConfig struct {
	// Nodes receive every block; at least one is required.
	Nodes []NamedNode
	// JournalPath is the local file where blocks are written (fsynced)
	// before they are submitted. Required.
	JournalPath string
	// Attempts is how many times submitblock is tried on a node that gives
	// no answer (transport errors). Default 5.
	Attempts int
	// RetryDelay is the wait before the first retry; it doubles after each.
	// Default 200 ms.
	RetryDelay time.Duration
	// Logger receives one line per node answer; nil logs nothing.
	Logger *zap.Logger
}

// Defaults for SubmitterConfig fields left zero.
const (
	DefaultSubmitAttempts = 5
	DefaultRetryDelay     = 200 * time.Millisecond
)

// Submitter makes found blocks durable and submits them to every node: each
// block is appended to the journal and fsynced before the first
// submitblock, so a crash cannot lose it, and Recover resubmits what the
// chain does not have yet after a restart. A block a node accepted stays in
// the journal, with its finder and the sequence of its finding share
// (NoteFinding), until its record is taken (MarkRecorded), so that record
// can be retried after a store outage or a crash (Unrecorded). The Tracker
// drives it; used alone (no records) it only submits. It is safe for
// concurrent use.
type Submitter struct {
	cfg     SubmitterConfig
	log     *zap.Logger
	journal *journal
}

// NewSubmitter checks cfg and returns a submitter. The journal file is
// created on first use.
func NewSubmitter(cfg SubmitterConfig) (*Submitter, error) {
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("block submitter: no nodes configured")
	}
	for i, n := range cfg.Nodes {
		if n.Node == nil {
			return nil, fmt.Errorf("block submitter: node %d (%q) is nil", i, n.Name)
		}
	}
	if cfg.JournalPath == "" {
		return nil, errors.New("block submitter: JournalPath is required")
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = DefaultSubmitAttempts
	}
	if cfg.Attempts < 1 {
		return nil, fmt.Errorf("block submitter: Attempts %d: want ≥ 1", cfg.Attempts)
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Submitter{cfg: cfg, log: log, journal: &journal{path: cfg.JournalPath, log: log}}, nil
}

// Submit assembles the candidate's block, journals it, submits it to every
// node at once, retries transport errors, and asks each node for the block
// by hash. The report holds every node's answer. An error means the block
// could not be assembled (nothing was submitted); a journal failure is
// logged and reported in Report.JournalErr, and the block is
// submitted regardless.
func (s *Submitter) Submit(ctx context.Context, c shares.Candidate) (Report, error) {
	block, journalErr, err := s.Journal(c)
	if err != nil {
		return Report{}, err
	}
	rep := s.submitAll(ctx, block, c.Job.Height)
	rep.JournalErr = journalErr
	return rep, nil
}

// Journal assembles the candidate's block and journals it (fsync), naming
// its finder (c.Worker). An error means the block could not be assembled;
// journalErr that it could not be written (logged; the caller submits the
// block regardless).
func (s *Submitter) Journal(c shares.Candidate) (block Block, journalErr, err error) {
	if c.Job == nil {
		return Block{}, nil, errors.New("submit block: candidate has no job")
	}
	raw, err := c.Job.BlockBytes(c.Extranonce1, c.Extranonce2, c.Header)
	if err != nil {
		return Block{}, nil, fmt.Errorf("submit block: %w", err)
	}
	if block, err = newBlock(raw); err != nil {
		return Block{}, nil, fmt.Errorf("submit block: %w", err)
	}
	hash := block.Hash
	if hash != c.Hash {
		return Block{}, nil, fmt.Errorf("submit block: assembled block hash %s differs from the share's %s", hash, c.Hash)
	}
	line := journalLine{Hash: hash.String(), Height: c.Job.Height, Hex: hex.EncodeToString(raw), Time: time.Now().UTC(), Finder: c.Worker}
	if journalErr = s.journal.append(line); journalErr != nil {
		s.log.Error("block journal write failed; submitting anyway", zap.String("hash", line.Hash), zap.Error(journalErr))
	}
	return block, journalErr, nil
}

// SubmitBlock submits a block (journaled first by Journal) to every node at
// once, retries transport errors, asks each node for the block by hash, and
// journals it confirmed when one has it.
func (s *Submitter) SubmitBlock(ctx context.Context, block Block, height int64) Report {
	return s.submitAll(ctx, block, height)
}

func (s *Submitter) submitAll(ctx context.Context, block Block, height int64) Report {
	hash := block.Hash
	rep := Report{Hash: hash, Height: height, Answers: make([]NodeAnswer, len(s.cfg.Nodes))}
	var wg sync.WaitGroup
	for i, n := range s.cfg.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Answers[i] = s.submitOne(ctx, n, block)
		}()
	}
	wg.Wait()
	for _, a := range rep.Answers {
		rep.Confirmed = rep.Confirmed || a.Confirmed
		level := zap.InfoLevel
		switch a.Answer {
		case AnswerAccepted, AnswerDuplicate:
		case AnswerInconclusive:
			level = zap.WarnLevel
		default:
			level = zap.ErrorLevel
		}
		if ce := s.log.Check(level, "block submitted"); ce != nil {
			ce.Write(zap.String("node", a.Node), zap.String("hash", hash.String()), zap.Int64("height", height),
				zap.Stringer("answer", a.Answer), zap.String("reason", a.Reason), zap.Int("attempts", a.Attempts),
				zap.Bool("confirmed", a.Confirmed), zap.Error(a.Err))
		}
	}
	if rep.Confirmed {
		if err := s.journal.append(journalLine{Hash: hash.String(), Height: height, Time: time.Now().UTC(), Done: doneConfirmed}); err != nil {
			s.log.Error("block journal write failed", zap.String("hash", hash.String()), zap.Error(err))
		}
	}
	return rep
}

// submitOne sends the block to one node, retrying while it gives no answer,
// then asks for the block by hash.
func (s *Submitter) submitOne(ctx context.Context, n NamedNode, block Block) NodeAnswer {
	a := NodeAnswer{Node: n.Name, Answer: AnswerTransportError}
	delay := s.cfg.RetryDelay
	for a.Attempts < s.cfg.Attempts {
		a.Attempts++
		reason, err := n.Node.SubmitBlockBytes(ctx, block.Raw)
		if err == nil {
			a.Answer, a.Reason, a.Err = classify(reason), reason, nil
			break
		}
		a.Err = err
		if a.Attempts == s.cfg.Attempts || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay *= 2
	}
	// Whatever the answer (even a transport error: the block may have
	// arrived), ask the node whether it has the block.
	if got, err := n.Node.GetBlockHeader(ctx, block.Hash); err == nil && got != nil && got.BlockHash() == block.Hash {
		a.Confirmed = true
	}
	return a
}

// Recover reads the journal and, for each block not yet resolved, asks the
// nodes whether the main chain has it. A block the chain has is marked
// confirmed (accepted); a block whose height the chain has already passed
// with another block is marked stale; the others (height still current) are
// submitted again. It returns a report for each resubmitted block, and
// rewrites the journal keeping only unresolved blocks and those a node has
// whose record is not taken yet (see Unrecorded: a block found in the main
// chain here is one of them until MarkRecorded).
func (s *Submitter) Recover(ctx context.Context) ([]Report, error) {
	pending, err := s.pending()
	if err != nil {
		return nil, err
	}
	var reports []Report
	for _, e := range pending {
		block, err := decodeBlock(e.Hex, e.Hash)
		if err != nil {
			return reports, fmt.Errorf("recover block %s: %w", e.Hash, err)
		}
		hash := block.Hash
		state, err := s.chainState(ctx, hash, e.Height)
		if err != nil {
			return reports, fmt.Errorf("recover block %s: %w", e.Hash, err)
		}
		switch state {
		case doneConfirmed, doneStale:
			s.log.Info("journaled block resolved", zap.String("hash", e.Hash), zap.Int64("height", e.Height), zap.String("state", state))
			if err := s.journal.append(journalLine{Hash: e.Hash, Height: e.Height, Time: time.Now().UTC(), Done: state}); err != nil {
				return reports, err
			}
		default:
			s.log.Warn("resubmitting journaled block", zap.String("hash", e.Hash), zap.Int64("height", e.Height))
			reports = append(reports, s.submitAll(ctx, block, e.Height))
		}
	}
	return reports, s.journal.compact()
}

// chainState says whether the main chain (per any node that answers) holds
// the block (doneConfirmed), has moved past its height with another block
// (doneStale), or neither ("current").
func (s *Submitter) chainState(ctx context.Context, hash chainhash.Hash, height int64) (string, error) {
	var lastErr error
	answered := false
	stale := false
	for _, n := range s.cfg.Nodes {
		tip, err := n.Node.GetBlockCount(ctx)
		if err != nil {
			lastErr = err
			continue
		}
		answered = true
		if tip < height {
			continue
		}
		main, err := n.Node.GetBlockHash(ctx, height)
		if err != nil {
			lastErr = err
			continue
		}
		if main == hash {
			return doneConfirmed, nil
		}
		stale = true
	}
	if !answered {
		return "", fmt.Errorf("no node answered: %w", lastErr)
	}
	if stale {
		return doneStale, nil
	}
	return "current", nil
}

// pending returns the block lines of the journaled blocks without a
// submission outcome, in journal order.
func (s *Submitter) pending() ([]journalLine, error) {
	blocks, err := s.journal.read()
	if err != nil {
		return nil, err
	}
	var out []journalLine
	for _, b := range blocks {
		if b.pendingSubmit() {
			out = append(out, b.line)
		}
	}
	return out, nil
}

// Pending returns the hashes (display order) of journaled blocks no node
// has confirmed yet (StateJournaled), for operators and tests.
func (s *Submitter) Pending() ([]string, error) {
	lines, err := s.pending()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(lines))
	for i, e := range lines {
		out[i] = e.Hash
	}
	return out, nil
}

// Accepted is a block a node has (StateAccepted) whose record is not taken
// yet: see Submitter.Unrecorded.
type Accepted struct {
	Hash   chainhash.Hash // internal order
	Height int64
	Block  Block
	Finder string // the worker that found it; "" when it was never noted
	// Seq is the ledger sequence ("instance:counter") of the share that
	// found it, "" when it was never noted (the record is then late).
	Seq  string
	Time time.Time // when the block was journaled: when the pool found it
}

// NoteFinding journals (fsync) the worker and the ledger sequence
// ("instance:counter") of the share that found a block, so that a record
// taken later, after a crash or while the store is down, still names the
// finder and gets the window ending at its share. Empty values are not
// written; with both empty it writes nothing.
func (s *Submitter) NoteFinding(hash chainhash.Hash, height int64, finder, seq string) error {
	if finder == "" && seq == "" {
		return nil
	}
	if err := s.journal.append(journalLine{Hash: hash.String(), Height: height, Time: time.Now().UTC(), Finder: finder, Seq: seq}); err != nil {
		return fmt.Errorf("note finding share of block %s: %w", hash, err)
	}
	return nil
}

// MarkRecorded journals (fsync) that a block's record was taken
// (StateRecorded): the block stops being returned by Unrecorded and leaves
// the journal at the next compaction.
func (s *Submitter) MarkRecorded(hash chainhash.Hash, height int64) error {
	if err := s.journal.append(journalLine{Hash: hash.String(), Height: height, Time: time.Now().UTC(), Done: doneRecorded}); err != nil {
		return fmt.Errorf("mark block %s recorded: %w", hash, err)
	}
	return nil
}

// Unrecorded returns the journaled blocks a node accepted (at Submit, or
// found in the main chain by Recover) that MarkRecorded has not marked yet,
// in journal order. A block whose journaled data no longer decodes is
// logged and left out.
func (s *Submitter) Unrecorded() ([]Accepted, error) {
	blocks, err := s.journal.read()
	if err != nil {
		return nil, err
	}
	var out []Accepted
	for _, b := range blocks {
		if !b.unrecorded() {
			continue
		}
		block, err := decodeBlock(b.line.Hex, b.line.Hash)
		if err != nil {
			s.log.Error("block journal: unreadable block", zap.String("hash", b.line.Hash), zap.Error(err))
			continue
		}
		out = append(out, Accepted{Hash: block.Hash, Height: b.line.Height, Block: block, Finder: b.finder, Seq: b.seq, Time: b.line.Time})
	}
	return out, nil
}

// States returns the journal's state of each block it holds, by hash
// (display order). A block compacted away after its record (or as stale)
// is no longer listed.
func (s *Submitter) States() (map[string]State, error) {
	blocks, err := s.journal.read()
	if err != nil {
		return nil, err
	}
	out := make(map[string]State, len(blocks))
	for _, b := range blocks {
		out[b.line.Hash] = b.state()
	}
	return out, nil
}

// Compact rewrites the journal without the blocks that need nothing more
// (recorded, or stale).
func (s *Submitter) Compact() error { return s.journal.compact() }
