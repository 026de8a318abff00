package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The spool is an append-only file of records, one per batch:
//
//	uint32 big-endian payload length | uint32 CRC-32C of payload | payload (JSON Batch)
//
// A record is acknowledged only after the fsync that follows its write, so a
// torn or corrupt record can only be the last one and was never
// acknowledged: opening the spool truncates it away.
const spoolHeader = 8

// maxSpoolRecord bounds one record so a corrupt length cannot make us
// allocate gigabytes.
const maxSpoolRecord = 64 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// spool is owned by the Recorder's flusher goroutine; it is not safe for
// concurrent use.
type spool struct {
	path     string
	maxBytes int64
	f        *os.File // nil while the spool is empty and no file exists
	size     int64
	records  int
	lastSeq  uint64
	unlock   func()
	buf      []byte
}

// openSpool opens (or prepares) the spool at path, keeping the valid records
// already there. maxBytes ≤ 0 means no limit.
func openSpool(path string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s := &spool{path: path, maxBytes: maxBytes, unlock: unlock}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		unlock()
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s.f = f
	var off int64
	for {
		b, next, err := s.read(off)
		if err != nil {
			break // end, or a torn tail that was never acknowledged
		}
		s.records++
		s.lastSeq = b.Seq
		off = next
	}
	st, err := f.Stat()
	if err != nil {
		s.close()
		return nil, fmt.Errorf("open spool: %w", err)
	}
	if st.Size() != off {
		if err := f.Truncate(off); err != nil {
			s.close()
			return nil, fmt.Errorf("open spool: truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			s.close()
			return nil, fmt.Errorf("open spool: %w", err)
		}
	}
	s.size = off
	return s, nil
}

// pending reports whether the spool holds records not yet replayed.
func (s *spool) pending() bool { return s.size > 0 }

// append writes b as one record and fsyncs it.
func (s *spool) append(b *Batch) error {
	payload, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("spool batch: %w", err)
	}
	if len(payload) > maxSpoolRecord {
		return fmt.Errorf("spool batch: record of %d bytes is too large", len(payload))
	}
	n := int64(spoolHeader + len(payload))
	if s.maxBytes > 0 && s.size+n > s.maxBytes {
		return fmt.Errorf("spool batch: spool full (%d of %d bytes)", s.size, s.maxBytes)
	}
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("spool batch: %w", err)
		}
		// The directory entry must be durable too, or a crash could lose
		// the whole file.
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			f.Close()
			return fmt.Errorf("spool batch: %w", err)
		}
		s.f = f
	}
	s.buf = s.buf[:0]
	s.buf = binary.BigEndian.AppendUint32(s.buf, uint32(len(payload)))
	s.buf = binary.BigEndian.AppendUint32(s.buf, crc32.Checksum(payload, crcTable))
	s.buf = append(s.buf, payload...)
	if _, err := s.f.WriteAt(s.buf, s.size); err != nil {
		_ = s.f.Truncate(s.size)
		return fmt.Errorf("spool batch: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		// After a failed fsync the page cache state is unknown; do not
		// count the record as durable.
		_ = s.f.Truncate(s.size)
		return fmt.Errorf("spool batch: fsync: %w", err)
	}
	s.size += n
	s.records++
	s.lastSeq = b.Seq
	return nil
}

// read decodes the record at off and returns the offset of the next one.
// io.EOF means off is the end of the spool.
func (s *spool) read(off int64) (*Batch, int64, error) {
	if s.f == nil {
		return nil, off, io.EOF
	}
	var hdr [spoolHeader]byte
	if _, err := s.f.ReadAt(hdr[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, off, io.EOF
		}
		return nil, off, fmt.Errorf("read spool: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n > maxSpoolRecord {
		return nil, off, fmt.Errorf("read spool at %d: bad record length %d", off, n)
	}
	payload := make([]byte, n)
	if _, err := s.f.ReadAt(payload, off+spoolHeader); err != nil {
		return nil, off, fmt.Errorf("read spool at %d: %w", off, err)
	}
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, off, fmt.Errorf("read spool at %d: checksum mismatch", off)
	}
	b := new(Batch)
	if err := json.Unmarshal(payload, b); err != nil {
		return nil, off, fmt.Errorf("read spool at %d: %w", off, err)
	}
	return b, off + spoolHeader + int64(n), nil
}

// clear removes the spool file once every record was replayed.
func (s *spool) clear() error {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove spool: %w", err)
	}
	s.size, s.records = 0, 0
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("remove spool: %w", err)
	}
	return nil
}

// close releases the file and the lock; the records stay on disk.
func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
