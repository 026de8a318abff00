package shares

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"
)

// Node is a node blocks are submitted to. blocktemplate/bitcoind.Client
// implements it. Methods must be safe for concurrent use.
type Node interface {
	// SubmitBlock sends a block: reason is "" when the node accepted it,
	// otherwise its answer ("duplicate", "inconclusive", "high-hash", …);
	// err is for transport failures, after which the block may or may not
	// have reached the node.
	SubmitBlock(ctx context.Context, block *wire.MsgBlock) (reason string, err error)
	// GetBlock returns the block with this hash (internal order) if the
	// node has it, on any branch.
	GetBlock(ctx context.Context, hash chainhash.Hash) (*wire.MsgBlock, error)
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

// BlockReport is the outcome of submitting one block to every node.
type BlockReport struct {
	Hash       chainhash.Hash // internal order
	Height     int64
	Answers    []NodeAnswer // one per configured node, in configuration order
	Confirmed  bool         // at least one node has the block
	JournalErr error        // the journal write failed (the block was submitted anyway)
}

// SubmitterConfig configures a BlockSubmitter.
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

// BlockSubmitter makes found blocks durable and submits them to every
// node: each block is appended to a journal and fsynced before the first
// submitblock, so a crash cannot lose it, and Recover resubmits what the
// chain does not have yet after a restart. A block a node accepted stays in
// the journal until the pool's record of it is taken (MarkRecorded), so
// that record can be retried after a store outage or a crash (Unrecorded).
// It is safe for concurrent use.
type BlockSubmitter struct {
	cfg SubmitterConfig
	log *zap.Logger
	mu  sync.Mutex // serializes journal writes
}

// journalEntry is one line of the journal. A block line has Hex; a
// resolution line (Done "confirmed" or "stale") says the block needs no more
// submitting; a finder line (Finder only) names the worker that found it; a
// "recorded" line says the pool's record of it was taken.
type journalEntry struct {
	Hash   string    `json:"hash"` // display order
	Height int64     `json:"height"`
	Hex    string    `json:"hex,omitempty"`
	Time   time.Time `json:"time"`
	Done   string    `json:"done,omitempty"` // "confirmed" or "stale"; "recorded" (doneRecorded)
	Finder string    `json:"finder,omitempty"`
}

// doneRecorded marks a block whose pool record (the PPLNS snapshot) was
// taken; until then a confirmed block survives compaction.
const doneRecorded = "recorded"

// NewBlockSubmitter checks cfg and returns a submitter. The journal file is
// created on first use.
func NewBlockSubmitter(cfg SubmitterConfig) (*BlockSubmitter, error) {
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
	return &BlockSubmitter{cfg: cfg, log: log}, nil
}

// Submit assembles the candidate's block, journals it, submits it to every
// node at once, retries transport errors, and asks each node for the block
// by hash. The report holds every node's answer. An error means the block
// could not be assembled (nothing was submitted); a journal failure is
// logged and reported in BlockReport.JournalErr, and the block is
// submitted regardless.
func (s *BlockSubmitter) Submit(ctx context.Context, c Candidate) (BlockReport, error) {
	if c.Job == nil {
		return BlockReport{}, errors.New("submit block: candidate has no job")
	}
	block, err := c.Job.Block(c.Extranonce1, c.Extranonce2, c.Header)
	if err != nil {
		return BlockReport{}, fmt.Errorf("submit block: %w", err)
	}
	hash := block.BlockHash()
	if hash != c.Hash {
		return BlockReport{}, fmt.Errorf("submit block: assembled block hash %s differs from the share's %s", hash, c.Hash)
	}
	var buf bytes.Buffer
	buf.Grow(block.SerializeSize())
	if err := block.Serialize(&buf); err != nil {
		return BlockReport{}, fmt.Errorf("submit block: serialize: %w", err)
	}
	entry := journalEntry{Hash: hash.String(), Height: c.Job.Height, Hex: hex.EncodeToString(buf.Bytes()), Time: time.Now().UTC(), Finder: c.Worker}
	journalErr := s.append(entry)
	if journalErr != nil {
		s.log.Error("block journal write failed; submitting anyway", zap.String("hash", entry.Hash), zap.Error(journalErr))
	}
	rep := s.submitAll(ctx, block, c.Job.Height)
	rep.JournalErr = journalErr
	return rep, nil
}

func (s *BlockSubmitter) submitAll(ctx context.Context, block *wire.MsgBlock, height int64) BlockReport {
	hash := block.BlockHash()
	rep := BlockReport{Hash: hash, Height: height, Answers: make([]NodeAnswer, len(s.cfg.Nodes))}
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
		if err := s.append(journalEntry{Hash: hash.String(), Height: height, Time: time.Now().UTC(), Done: "confirmed"}); err != nil {
			s.log.Error("block journal write failed", zap.String("hash", hash.String()), zap.Error(err))
		}
	}
	return rep
}

// submitOne sends the block to one node, retrying while it gives no answer,
// then asks for the block by hash.
func (s *BlockSubmitter) submitOne(ctx context.Context, n NamedNode, block *wire.MsgBlock) NodeAnswer {
	a := NodeAnswer{Node: n.Name, Answer: AnswerTransportError}
	delay := s.cfg.RetryDelay
	for a.Attempts < s.cfg.Attempts {
		a.Attempts++
		reason, err := n.Node.SubmitBlock(ctx, block)
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
	if got, err := n.Node.GetBlock(ctx, block.BlockHash()); err == nil && got != nil && got.BlockHash() == block.BlockHash() {
		a.Confirmed = true
	}
	return a
}

// Recover reads the journal and, for each block not yet resolved, asks the
// nodes whether the main chain has it. A block the chain has is marked
// confirmed; a block whose height the chain has already passed with another
// block is marked stale; the others (height still current) are submitted
// again. It returns a report for each resubmitted block, and rewrites the
// journal keeping only unresolved blocks and those a node has whose record
// is not taken yet (see Unrecorded: a block found in the main chain here is
// one of them until MarkRecorded).
func (s *BlockSubmitter) Recover(ctx context.Context) ([]BlockReport, error) {
	s.mu.Lock()
	pending, err := s.readPending()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var reports []BlockReport
	for _, e := range pending {
		block, err := decodeBlock(e.Hex)
		if err != nil {
			return reports, fmt.Errorf("recover block %s: %w", e.Hash, err)
		}
		hash := block.BlockHash()
		state, err := s.chainState(ctx, hash, e.Height)
		if err != nil {
			return reports, fmt.Errorf("recover block %s: %w", e.Hash, err)
		}
		switch state {
		case "confirmed", "stale":
			s.log.Info("journaled block resolved", zap.String("hash", e.Hash), zap.Int64("height", e.Height), zap.String("state", state))
			if err := s.append(journalEntry{Hash: e.Hash, Height: e.Height, Time: time.Now().UTC(), Done: state}); err != nil {
				return reports, err
			}
		default:
			s.log.Warn("resubmitting journaled block", zap.String("hash", e.Hash), zap.Int64("height", e.Height))
			reports = append(reports, s.submitAll(ctx, block, e.Height))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return reports, s.compact()
}

// chainState says whether the main chain (per any node that answers) holds
// the block ("confirmed"), has moved past its height with another block
// ("stale"), or neither ("current").
func (s *BlockSubmitter) chainState(ctx context.Context, hash chainhash.Hash, height int64) (string, error) {
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
			return "confirmed", nil
		}
		stale = true
	}
	if !answered {
		return "", fmt.Errorf("no node answered: %w", lastErr)
	}
	if stale {
		return "stale", nil
	}
	return "current", nil
}

// append writes one journal line and fsyncs the file.
func (s *BlockSubmitter) append(e journalEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("block journal: encode: %w", err)
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.cfg.JournalPath, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("block journal: open: %w", err)
	}
	// A crash in mid-write can leave a torn last line without its newline;
	// start on a fresh line so this record is not glued to it.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], fi.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("block journal: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("block journal: fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("block journal: close: %w", err)
	}
	return nil
}

// journalBlock is one block's state folded from its journal lines.
type journalBlock struct {
	entry    journalEntry // the block line (Hex set); Hex is "" if it was never written
	finder   string
	resolved string // "", "confirmed" or "stale": the submission's outcome
	recorded bool   // the pool's record of the block was taken (MarkRecorded)
}

// pendingSubmit: the chain's answer is still to be found (Recover).
func (b *journalBlock) pendingSubmit() bool { return b.entry.Hex != "" && b.resolved == "" }

// unrecorded: a node has the block, the pool's record of it is not taken yet.
func (b *journalBlock) unrecorded() bool {
	return b.entry.Hex != "" && b.resolved == "confirmed" && !b.recorded
}

// readJournal folds the journal into one state per block, in the order the
// blocks first appeared. A missing journal is empty. A torn last line (crash
// in mid-write, before its fsync returned) is ignored.
func (s *BlockSubmitter) readJournal() ([]*journalBlock, error) {
	f, err := os.Open(s.cfg.JournalPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("block journal: open: %w", err)
	}
	defer f.Close()
	var order []*journalBlock
	blocks := map[string]*journalBlock{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Hash == "" {
			s.log.Warn("block journal: skipping unreadable line", zap.Error(err))
			continue
		}
		b := blocks[e.Hash]
		if b == nil {
			b = &journalBlock{entry: journalEntry{Hash: e.Hash, Height: e.Height}}
			blocks[e.Hash] = b
			order = append(order, b)
		}
		if e.Finder != "" {
			b.finder = e.Finder
		}
		switch {
		case e.Done == doneRecorded:
			b.recorded = true
		case e.Done != "":
			b.resolved = e.Done
		case e.Hex != "":
			// The block journaled (again): its submission starts over.
			b.entry, b.resolved = e, ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("block journal: read: %w", err)
	}
	return order, nil
}

// readPending returns the journaled blocks without a submission outcome, in
// journal order.
func (s *BlockSubmitter) readPending() ([]journalEntry, error) {
	blocks, err := s.readJournal()
	if err != nil {
		return nil, err
	}
	var out []journalEntry
	for _, b := range blocks {
		if b.pendingSubmit() {
			out = append(out, b.entry)
		}
	}
	return out, nil
}

// compact rewrites the journal with only the blocks still needing work:
// those whose submission is unresolved and those a node has whose record is
// not taken yet (write to a temporary file, fsync, rename, fsync the
// directory). Called with s.mu held.
func (s *BlockSubmitter) compact() error {
	blocks, err := s.readJournal()
	if err != nil {
		return err
	}
	var keep []*journalBlock
	for _, b := range blocks {
		if b.pendingSubmit() || b.unrecorded() {
			keep = append(keep, b)
		}
	}
	if len(keep) == 0 {
		if err := os.Remove(s.cfg.JournalPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("block journal: remove: %w", err)
		}
		return syncDir(filepath.Dir(s.cfg.JournalPath))
	}
	tmp := s.cfg.JournalPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("block journal: compact: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, b := range keep {
		e := b.entry
		e.Finder = b.finder
		line, _ := json.Marshal(e)
		w.Write(line)
		w.WriteByte('\n')
		if b.resolved != "" {
			line, _ = json.Marshal(journalEntry{Hash: e.Hash, Height: e.Height, Time: e.Time, Done: b.resolved})
			w.Write(line)
			w.WriteByte('\n')
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("block journal: compact: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("block journal: compact: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("block journal: compact: %w", err)
	}
	if err := os.Rename(tmp, s.cfg.JournalPath); err != nil {
		return fmt.Errorf("block journal: compact: %w", err)
	}
	return syncDir(filepath.Dir(s.cfg.JournalPath))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("block journal: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("block journal: sync dir: %w", err)
	}
	return nil
}

// Pending returns the hashes (display order) of journaled blocks not yet
// resolved, for operators and tests.
func (s *BlockSubmitter) Pending() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := s.readPending()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Hash
	}
	return out, nil
}

// AcceptedBlock is a block a node has (its submission was confirmed) whose
// pool record is not taken yet: see BlockSubmitter.Unrecorded.
type AcceptedBlock struct {
	Hash   chainhash.Hash // internal order
	Height int64
	Block  *wire.MsgBlock
	Finder string    // the worker that found it; "" when it was never noted
	Time   time.Time // when the block was journaled
}

// NoteFinder journals (fsync) the worker that found a block, so that a
// record taken later, after a crash or while the store is down, still names
// the finder.
func (s *BlockSubmitter) NoteFinder(hash chainhash.Hash, height int64, finder string) error {
	if finder == "" {
		return nil
	}
	if err := s.append(journalEntry{Hash: hash.String(), Height: height, Time: time.Now().UTC(), Finder: finder}); err != nil {
		return fmt.Errorf("note finder of block %s: %w", hash, err)
	}
	return nil
}

// MarkRecorded journals (fsync) that the pool's record of a block was taken:
// the block stops being returned by Unrecorded and leaves the journal at the
// next compaction.
func (s *BlockSubmitter) MarkRecorded(hash chainhash.Hash, height int64) error {
	if err := s.append(journalEntry{Hash: hash.String(), Height: height, Time: time.Now().UTC(), Done: doneRecorded}); err != nil {
		return fmt.Errorf("mark block %s recorded: %w", hash, err)
	}
	return nil
}

// Unrecorded returns the journaled blocks a node accepted (at Submit, or
// found in the main chain by Recover) that MarkRecorded has not marked yet,
// in journal order. A block whose journaled data no longer decodes is
// logged and left out.
func (s *BlockSubmitter) Unrecorded() ([]AcceptedBlock, error) {
	s.mu.Lock()
	blocks, err := s.readJournal()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []AcceptedBlock
	for _, b := range blocks {
		if !b.unrecorded() {
			continue
		}
		block, err := decodeBlock(b.entry.Hex)
		if err != nil {
			s.log.Error("block journal: unreadable block", zap.String("hash", b.entry.Hash), zap.Error(err))
			continue
		}
		out = append(out, AcceptedBlock{Hash: block.BlockHash(), Height: b.entry.Height, Block: block, Finder: b.finder, Time: b.entry.Time})
	}
	return out, nil
}

// Compact rewrites the journal without the blocks that need nothing more
// (resolved and recorded, or stale).
func (s *BlockSubmitter) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compact()
}

func decodeBlock(h string) (*wire.MsgBlock, error) {
	raw, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("journal hex: %w", err)
	}
	var block wire.MsgBlock
	if err := block.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &block, nil
}
