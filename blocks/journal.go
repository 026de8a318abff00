package blocks

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
)

// journal is the append-only file that makes found blocks crash-safe: one
// JSON line per transition of a block, fsynced before the transition is
// acted on, folded by hash when read (docs/payouts.md, "The life of a found
// block"). It is safe for concurrent use.
type journal struct {
	path string
	log  *zap.Logger
	mu   sync.Mutex // serializes writes and compaction
}

// journalLine is one line of the journal. A block line has Hex (the block
// was journaled, before any node saw it); a resolution line has Done
// ("confirmed": a node has it; "stale": the chain passed its height with
// another block; "recorded": its record was taken); a finder line has
// Finder and/or Seq: the worker and the ledger sequence ("instance:counter")
// of the share that found it, so a block recorded after a restart still
// names its finder and gets the window ending at its share.
type journalLine struct {
	Hash   string    `json:"hash"` // display order
	Height int64     `json:"height"`
	Hex    string    `json:"hex,omitempty"`
	Time   time.Time `json:"time"`
	Done   string    `json:"done,omitempty"`
	Finder string    `json:"finder,omitempty"`
	Seq    string    `json:"seq,omitempty"`
}

// Resolution words of journal lines.
const (
	doneConfirmed = "confirmed"
	doneStale     = "stale"
	doneRecorded  = "recorded"
)

// journalBlock is one block's state folded from its journal lines.
type journalBlock struct {
	line     journalLine // the block line (Hex set); Hex is "" if it was never written
	finder   string
	seq      string
	resolved string // "", doneConfirmed or doneStale: the submission's outcome
	recorded bool   // the block's record was taken
}

// state is the block's place in the state machine as far as the journal
// knows it.
func (b *journalBlock) state() State {
	switch {
	case b.recorded:
		return StateRecorded
	case b.resolved == doneStale:
		return StateStale
	case b.resolved == doneConfirmed:
		return StateAccepted
	}
	return StateJournaled
}

// pendingSubmit: the chain's answer is still to be found (Recover).
func (b *journalBlock) pendingSubmit() bool { return b.line.Hex != "" && b.state() == StateJournaled }

// unrecorded: a node has the block, its record is not taken yet.
func (b *journalBlock) unrecorded() bool { return b.line.Hex != "" && b.state() == StateAccepted }

// append writes one journal line and fsyncs the file.
func (j *journal) append(e journalLine) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("block journal: encode: %w", err)
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
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

// read folds the journal into one state per block, in the order the blocks
// first appeared. A missing journal is empty. A torn last line (crash in
// mid-write, before its fsync returned) is skipped.
func (j *journal) read() ([]*journalBlock, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.readLocked()
}

func (j *journal) readLocked() ([]*journalBlock, error) {
	f, err := os.Open(j.path)
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
		var e journalLine
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Hash == "" {
			j.log.Warn("block journal: skipping unreadable line", zap.Error(err))
			continue
		}
		b := blocks[e.Hash]
		if b == nil {
			b = &journalBlock{line: journalLine{Hash: e.Hash, Height: e.Height}}
			blocks[e.Hash] = b
			order = append(order, b)
		}
		if e.Finder != "" {
			b.finder = e.Finder
		}
		if e.Seq != "" {
			b.seq = e.Seq
		}
		switch {
		case e.Done == doneRecorded:
			b.recorded = true
		case e.Done != "":
			b.resolved = e.Done
		case e.Hex != "":
			// The block journaled (again): its submission starts over.
			b.line, b.resolved = e, ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("block journal: read: %w", err)
	}
	return order, nil
}

// compact rewrites the journal with only the blocks still needing work:
// those whose submission is unresolved and those a node has whose record is
// not taken yet (write to a temporary file, fsync, rename, fsync the
// directory).
func (j *journal) compact() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	blocks, err := j.readLocked()
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
		if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("block journal: remove: %w", err)
		}
		return syncDir(filepath.Dir(j.path))
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("block journal: compact: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, b := range keep {
		e := b.line
		e.Finder, e.Seq = b.finder, b.seq
		line, _ := json.Marshal(e)
		w.Write(line)
		w.WriteByte('\n')
		if b.resolved != "" {
			line, _ = json.Marshal(journalLine{Hash: e.Hash, Height: e.Height, Time: e.Time, Done: b.resolved})
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
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("block journal: compact: %w", err)
	}
	return syncDir(filepath.Dir(j.path))
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

// decodeBlock reads a journaled block (hex of its serialization) whose
// line names hash (display order).
func decodeBlock(h, hash string) (Block, error) {
	raw, err := hex.DecodeString(h)
	if err != nil {
		return Block{}, fmt.Errorf("journal hex: %w", err)
	}
	b, err := newBlock(raw)
	if err != nil {
		return Block{}, err
	}
	if b.Hash.String() != hash {
		return Block{}, fmt.Errorf("journaled block hashes to %s, its line says %s", b.Hash, hash)
	}
	return b, nil
}
