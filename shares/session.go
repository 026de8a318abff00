package shares

import (
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/blocktemplate"
)

// Session is one connection's share-validation state: its extranonce1,
// version-rolling mask and difficulty, the jobs it was sent, and a duplicate
// filter per job. Because extranonce1 is unique per connection, two sessions
// can never submit the same share, so no state is shared between sessions
// and nothing here takes a lock.
//
// A Session is owned by one goroutine at a time (the connection's read
// loop). Its extranonce1 must never be given to a new Session while jobs it
// was sent are live: the new one would start with empty duplicate filters
// (stratum therefore gives every subscribe a fresh extranonce1).
type Session struct {
	v        *Validator
	en1      [blocktemplate.MaxExtranonce1Size]byte
	en1Len   int
	mask     uint32
	diff     float64
	target   [4]uint64
	jobs     []*sessionJob // oldest first
	spare    []*sessionJob // dropped entries kept for reuse (their maps keep capacity)
	scratchS Submission
}

// sessionJob is a job as sent to one session.
type sessionJob struct {
	work   *Work
	diff   float64   // session difficulty when the job was sent
	target [4]uint64 // share target for diff
	seen   dupSet
}

// MinCreditDifficulty is the smallest difficulty a block-only hash is
// credited at: one unit of the share ledger (difficulty × 10^8, see
// shares/ledger.UnitScale), which records nothing smaller. Regtest's network
// difficulty (about 4.7e-10) is below it.
const MinCreditDifficulty = 1e-8

// Result describes a share that was hashed: accepted (error nil), a block
// candidate (Block true; always accepted), or rejected after hashing
// (duplicate or low difficulty, with the error beside it).
type Result struct {
	Job            *blocktemplate.Job
	Header         [80]byte
	Hash           chainhash.Hash // internal order; reverse for display
	Difficulty     float64        // target difficulty credited (what PPLNS counts): the share target met, or the network's for a block that met no share target
	HashDifficulty float64        // difficulty of the hash itself (diff1 / hash)
	MeetsTarget    bool           // the hash meets the share target
	Block          bool           // the hash meets the network target: submit the block
	Version        uint32         // header version after rolling
	NTime          uint32
	Nonce          uint32
	Extranonce2    [blocktemplate.MaxExtranonce2Size]byte
	Extranonce2Len int
}

// Share returns the ledger record of an accepted share (or block) for the
// given authorized worker. worker is the full username, address and
// workerName its parts as the stratum layer split them.
func (r *Result) Share(worker, address, workerName string, now time.Time) Share {
	var height int64
	if r.Job != nil {
		height = r.Job.Height
	}
	return Share{
		Worker:         worker,
		Address:        address,
		WorkerName:     workerName,
		Difficulty:     r.Difficulty,
		HashDifficulty: r.HashDifficulty,
		JobHeight:      height,
		Time:           now,
		Block:          r.Block,
	}
}

// NewSession returns the state of a new connection. extranonce1 is the
// connection's unique extranonce1; versionMask the negotiated
// version-rolling mask (0 when the miner does not roll). The difficulty
// starts at 1; set it with SetDifficulty before sending jobs.
func (v *Validator) NewSession(extranonce1 []byte, versionMask uint32) (*Session, error) {
	s := &Session{v: v, mask: versionMask}
	if len(extranonce1) > len(s.en1) {
		return nil, fmt.Errorf("shares: new session: extranonce1 is %d bytes, max %d", len(extranonce1), len(s.en1))
	}
	s.en1Len = copy(s.en1[:], extranonce1)
	if err := s.SetDifficulty(1); err != nil {
		return nil, err
	}
	return s, nil
}

// Extranonce1 returns the session's extranonce1.
func (s *Session) Extranonce1() []byte { return s.en1[:s.en1Len] }

// SetVersionMask sets the negotiated version-rolling mask (mining.configure,
// mining.set_version_mask); it applies to the next submit.
func (s *Session) SetVersionMask(mask uint32) { s.mask = mask }

// VersionMask returns the version-rolling mask.
func (s *Session) VersionMask() uint32 { return s.mask }

// Difficulty returns the current share difficulty.
func (s *Session) Difficulty() float64 { return s.diff }

// SetDifficulty sets the share difficulty (mining.set_difficulty). Jobs sent
// afterwards are judged at d; a share for an earlier job is accepted at that
// job's difficulty, or at d when d is lower (miners apply a new difficulty at
// once) and credited at the one it meets. Fractional difficulties are exact:
// the target is floor(diff1/d) from d's binary value.
func (s *Session) SetDifficulty(d float64) error {
	t := blocktemplate.DifficultyToTarget(d)
	if t == nil {
		return fmt.Errorf("shares: difficulty %v: want a positive finite number", d)
	}
	s.diff = d
	s.target = targetLimbs(t)
	return nil
}

// AddJob records that w's job was sent to the session (mining.notify) at the
// current difficulty. A job with CleanJobs set makes every earlier job stale
// and drops their duplicate filters; otherwise the oldest job is dropped once
// the session holds Config.MaxJobs. Sending the same job again refreshes its
// difficulty and keeps its duplicate filter.
func (s *Session) AddJob(w *Work) {
	for _, j := range s.jobs {
		if j.work.job.ID == w.job.ID {
			j.work, j.diff, j.target = w, s.diff, s.target
			return
		}
	}
	if w.job.CleanJobs {
		s.dropOldest(len(s.jobs))
	} else if len(s.jobs) >= s.v.cfg.MaxJobs {
		s.dropOldest(len(s.jobs) - s.v.cfg.MaxJobs + 1)
	}
	var j *sessionJob
	if n := len(s.spare); n > 0 {
		j, s.spare = s.spare[n-1], s.spare[:n-1]
	} else {
		j = new(sessionJob)
	}
	j.work, j.diff, j.target = w, s.diff, s.target
	s.jobs = append(s.jobs, j)
}

// DropJobs makes every job stale (for example when the pool learns of a new
// block before the next job is ready).
func (s *Session) DropJobs() { s.dropOldest(len(s.jobs)) }

func (s *Session) dropOldest(n int) {
	for _, j := range s.jobs[:n] {
		j.seen.reset()
		j.work = nil
		s.spare = append(s.spare, j)
	}
	// Keep only as many spares as jobs can be alive, so memory stays bounded.
	if limit := s.v.cfg.MaxJobs; len(s.spare) > limit {
		clear(s.spare[limit:])
		s.spare = s.spare[:limit]
	}
	m := copy(s.jobs, s.jobs[n:])
	clear(s.jobs[m:])
	s.jobs = s.jobs[:m]
}

// Work returns the live work for a job id, or nil when the job is unknown or stale.
func (s *Session) Work(jobID string) *Work {
	if j := s.find(jobID); j != nil {
		return j.work
	}
	return nil
}

func (s *Session) find(jobID string) *sessionJob {
	for i := len(s.jobs) - 1; i >= 0; i-- {
		if s.jobs[i].work.job.ID == jobID {
			return s.jobs[i]
		}
	}
	return nil
}

// SubmitParams parses the mining.submit params and validates the share into
// r; see ParseSubmit and Submit.
func (s *Session) SubmitParams(params []string, r *Result) error {
	if err := parseSubmitInto(&s.scratchS, params); err != nil {
		*r = Result{}
		return err
	}
	return s.Submit(&s.scratchS, r)
}

// Submit validates a share in the order of stratum-v1.md §10: job known and
// live (ErrJobNotFound), extranonce2 size (ErrBadExtranonce2), ntime range
// (ErrBadNTime), version bits within the mask (ErrBadVersionBits); then it
// rebuilds the header, hashes it, and checks the network target (Block),
// the share target (ErrLowDifficulty) and duplicates (ErrDuplicateShare).
// Errors are the package's bare sentinels. After hashing, r is filled even
// when the share is rejected (r.Job non-nil); a share rejected before
// hashing leaves r.Job nil and the other fields meaningless. The result
// is written through a pointer because it is large (header, hash) and this
// is the hot path: returning it by value would copy it. Submit does not
// allocate, except for the duplicate filter's occasional growth.
func (s *Session) Submit(sub *Submission, r *Result) error {
	// Every field is overwritten once the share is hashed; before that only
	// these say "not hashed" (zeroing the whole Result costs more).
	r.Job, r.Block, r.MeetsTarget, r.Difficulty, r.HashDifficulty = nil, false, false, 0, 0
	j := s.find(sub.JobID)
	if j == nil {
		return ErrJobNotFound
	}
	w := j.work
	if sub.Extranonce2Len != w.en2Size {
		return ErrBadExtranonce2
	}
	if sub.NTime < w.minTime || sub.NTime > w.maxTime {
		return ErrBadNTime
	}
	version := w.version
	if sub.HasVersionBits {
		var err error
		if version, err = RollVersion(w.version, s.mask, sub.VersionBits); err != nil {
			return err
		}
	}
	if s.en1Len != w.en1Size {
		// The session's extranonce1 does not fit the job's coinbase slot:
		// a wiring error, not the miner's fault; still no panic.
		return fmt.Errorf("shares: extranonce1 is %d bytes, job %s wants %d", s.en1Len, w.job.ID, w.en1Size)
	}

	var hdr [128]byte
	w.hashInto(&hdr, &r.Hash, s.en1[:s.en1Len], sub.Extranonce2[:sub.Extranonce2Len], version, sub.NTime, sub.Nonce)
	copy(r.Header[:], hdr[:80])
	r.Job = w.job
	r.Version, r.NTime, r.Nonce = version, sub.NTime, sub.Nonce
	r.Extranonce2, r.Extranonce2Len = sub.Extranonce2, sub.Extranonce2Len

	h := hashLimbs(&r.Hash)
	r.HashDifficulty = limbsDifficulty(&h)
	r.Block = lessOrEqual(&h, &w.netLimbs)
	switch {
	case lessOrEqual(&h, &j.target):
		r.MeetsTarget, r.Difficulty = true, j.diff
	case lessOrEqual(&h, &s.target):
		r.MeetsTarget, r.Difficulty = true, s.diff
	case r.Block:
		// A block always counts, even when the share target is harder
		// than the network's (regtest, or a tiny test network). It is
		// credited at the target it met, the network's, never at the
		// share difficulty it did not meet: a miner that raised its own
		// difficulty above the network's would otherwise be paid that
		// difficulty for every block-only hash. The network difficulty
		// is below both share difficulties here (the hash met neither),
		// min keeps that true to the float's last bit. A network easier
		// than the ledger's unit (regtest) is credited one unit, so the
		// block's share can be recorded.
		r.Difficulty = min(max(w.netDiff, MinCreditDifficulty), j.diff, s.diff)
	default:
		return ErrLowDifficulty
	}
	key := [2]uint64{h[0], h[1]}
	// A live job with the same content (a refresh that changed nothing)
	// would take the same share again under its own id: look there too.
	for _, o := range s.jobs {
		if o != j && o.work.content == w.content && o.seen.contains(key) {
			return ErrDuplicateShare
		}
	}
	if j.seen.insert(key) {
		return ErrDuplicateShare
	}
	return nil
}

// NegotiateVersionMask is the BIP310 answer to a miner's version-rolling
// request: the server's mask ANDed with the miner's (a miner that sends no
// mask asks for ffffffff).
func NegotiateVersionMask(serverMask, minerMask uint32) uint32 { return serverMask & minerMask }

// RollVersion applies submitted version bits to a job version under mask
// (BIP310): (job &^ mask) | (bits & mask). Bits outside the mask are
// ErrBadVersionBits.
func RollVersion(jobVersion, mask, bits uint32) (uint32, error) {
	if bits&^mask != 0 {
		return 0, ErrBadVersionBits
	}
	return jobVersion&^mask | bits&mask, nil
}

// Candidate is a solved block ready for package blocks: the job and what
// the miner chose. It owns its byte slices.
type Candidate struct {
	// Worker found the block, as authorized ("address" or
	// "address.worker"); set by the caller, journaled with the block so
	// the PPLNS record keeps its finder across a crash.
	Worker      string
	Job         *blocktemplate.Job
	Extranonce1 []byte
	Extranonce2 []byte
	Header      [80]byte
	Hash        chainhash.Hash // internal order
}

// Candidate returns the block candidate for a Result with Block set.
func (s *Session) Candidate(r *Result) Candidate {
	return Candidate{
		Job:         r.Job,
		Extranonce1: append([]byte(nil), s.en1[:s.en1Len]...),
		Extranonce2: append([]byte(nil), r.Extranonce2[:r.Extranonce2Len]...),
		Header:      r.Header,
		Hash:        r.Hash,
	}
}
