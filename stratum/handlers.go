package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum/message"
)

// maxWorkersPerSession bounds mining.authorize calls that add workers.
const maxWorkersPerSession = 64

func (s *Session) handleAuthorize(req *message.Request) {
	user, ok := req.String(0)
	if !ok || user == "" {
		s.replyError(req, message.CodeOther, "Invalid params")
		return
	}
	w, err := s.parseWorker(user)
	if err != nil {
		s.replyError(req, message.CodeUnauthorized, "Unauthorized worker: "+err.Error())
		return
	}
	if s.srv.banned("worker:" + w.name) {
		s.replyError(req, message.CodeUnauthorized, "Worker banned")
		return
	}
	known := false
	for _, have := range s.workers {
		if have.name == w.name {
			known = true
			break
		}
	}
	if !known {
		if len(s.workers) >= maxWorkersPerSession {
			s.replyError(req, message.CodeUnauthorized, "Too many workers on this connection")
			return
		}
		s.mu.Lock() // Server.Ban reads the names from another goroutine
		s.workers = append(s.workers, w)
		s.mu.Unlock()
	}
	if pass, ok := req.String(1); ok {
		if d, ok := passwordDifficulty(pass); ok {
			s.setDifficulty(d)
		}
	}
	s.replyTrue(req)
	s.start()
}

// parseWorker checks "address[.worker]" against the configured network.
func (s *Session) parseWorker(user string) (worker, error) {
	if len(user) > 256 {
		return worker{}, errors.New("username too long")
	}
	addr, suffix, _ := strings.Cut(user, ".")
	a, err := btcutil.DecodeAddress(addr, s.srv.cfg.Network)
	if err != nil {
		return worker{}, fmt.Errorf("not a %s address", s.srv.cfg.Network.Name)
	}
	if !a.IsForNet(s.srv.cfg.Network) {
		return worker{}, fmt.Errorf("address is not for %s", s.srv.cfg.Network.Name)
	}
	return worker{name: user, address: a.EncodeAddress(), suffix: suffix}, nil
}

// passwordDifficulty finds "d=<difficulty>" among comma-separated password
// options (e.g. "x,d=0.5").
func passwordDifficulty(pass string) (float64, bool) {
	for opt := range strings.SplitSeq(pass, ",") {
		opt = strings.TrimSpace(opt)
		if v, ok := strings.CutPrefix(opt, "d="); ok {
			d, err := strconv.ParseFloat(v, 64)
			if err == nil && d > 0 && !math.IsInf(d, 0) {
				return d, true
			}
		}
	}
	return 0, false
}

// handleConfigure answers BIP310 mining.configure. Each requested extension
// gets true/false; unknown ones false.
func (s *Session) handleConfigure(req *message.Request) {
	var exts []string
	opts := map[string]json.RawMessage{}
	if len(req.Params) < 1 || json.Unmarshal(req.Params[0], &exts) != nil {
		s.replyError(req, message.CodeOther, "Invalid params")
		return
	}
	if len(req.Params) > 1 {
		_ = json.Unmarshal(req.Params[1], &opts) // absent or malformed options mean defaults
	}
	res := []byte{'{'}
	add := func(k string, v []byte) {
		if len(res) > 1 {
			res = append(res, ',')
		}
		res = message.AppendString(res, k)
		res = append(res, ':')
		res = append(res, v...)
	}
	seen := map[string]bool{}
	for _, ext := range exts {
		if seen[ext] {
			continue
		}
		seen[ext] = true
		switch ext {
		case "version-rolling":
			minerMask := uint32(0xffffffff)
			if raw, ok := opts["version-rolling.mask"]; ok {
				var m string
				if json.Unmarshal(raw, &m) == nil {
					if v, err := strconv.ParseUint(m, 16, 32); err == nil {
						minerMask = uint32(v)
					}
				}
			}
			minBits := 0
			if raw, ok := opts["version-rolling.min-bit-count"]; ok {
				if f, ok := message.ParseNumber(raw); ok && f > 0 {
					minBits = int(f)
				}
			}
			mask := s.srv.cfg.VersionMask & minerMask
			if bits.OnesCount32(mask) < minBits || mask == 0 {
				add(ext, []byte("false"))
				continue
			}
			s.versionMask = mask
			s.configured = true
			if s.shares != nil {
				s.mu.Lock()
				s.shares.SetVersionMask(mask)
				s.mu.Unlock()
			}
			add(ext, []byte("true"))
			add("version-rolling.mask", message.AppendString(nil, string(message.AppendHex32(nil, mask))))
		case "minimum-difficulty":
			f, ok := message.ParseNumber(opts["minimum-difficulty.value"])
			if !ok || f < 0 || math.IsInf(f, 0) {
				add(ext, []byte("false"))
				continue
			}
			s.setMinDifficulty(f)
			add(ext, []byte("true"))
		case "subscribe-extranonce":
			s.extranonceSub = true
			add(ext, []byte("true"))
		case "info":
			add(ext, []byte("true"))
		default:
			add(ext, []byte("false"))
		}
	}
	res = append(res, '}')
	if !req.IsNotification() {
		s.send(message.AppendResult(nil, req.ID, res))
	}
}

func (s *Session) setMinDifficulty(f float64) {
	s.mu.Lock()
	s.minDiff = f
	raise := s.diff < f
	d := s.diff
	s.mu.Unlock()
	if raise {
		s.setDifficulty(d) // clamping raises it to the new floor
	}
}

// diff1 is the difficulty-1 target 0xFFFF × 2^208.
var diff1 = new(big.Int).Lsh(big.NewInt(0xffff), 208)

func (s *Session) handleSuggestTarget(req *message.Request) {
	h, ok := req.String(0)
	t, okInt := new(big.Int).SetString(h, 16)
	if !ok || !okInt || t.Sign() <= 0 {
		s.replyError(req, message.CodeOther, "Invalid target")
		return
	}
	d, _ := new(big.Float).Quo(new(big.Float).SetInt(diff1), new(big.Float).SetInt(t)).Float64()
	s.setDifficulty(d)
	s.replyTrue(req)
}

// handleSubmit checks and judges one share. It returns false when the
// session must end (ban).
func (s *Session) handleSubmit(req *message.Request) bool {
	now := time.Now()
	workerName, _ := req.String(0)
	jobID, _ := req.String(1)
	code, age, err := s.submit(req, now)
	if err == nil {
		// Observed before the reply is queued, so a miner that has its
		// answer also sees it counted.
		s.srv.stats.Submit.Observe(time.Since(now))
		s.replyTrue(req)
		return s.countForBan(false, workerName)
	}
	s.srv.stats.Rejected[code-20].Add(1)
	if code == message.CodeJobNotFound && age > 0 {
		s.srv.stats.stale(age)
	}
	if obs := s.srv.cfg.Observer; obs != nil {
		obs.ShareRejected(Rejection{Worker: workerName, Remote: s.conn.RemoteAddr().String(), Code: code, Err: err, JobAge: age, Time: now})
	}
	if ce := s.srv.log.Check(zap.DebugLevel, "share rejected"); ce != nil {
		ce.Write(zap.String("worker", workerName), zap.String("job_id", jobID), zap.Int("code", code), zap.Error(err))
	}
	s.srv.stats.Submit.Observe(time.Since(now))
	s.replyError(req, code, rejectMessage(err))
	return s.countForBan(true, workerName)
}

func rejectMessage(err error) string {
	msg := err.Error()
	if msg == "" {
		return "Rejected"
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// countForBan keeps the reject ratio of this connection over the ban
// window; over the threshold the IP and worker are banned and the session
// ends.
func (s *Session) countForBan(rejected bool, workerName string) bool {
	cfg := &s.srv.t().ban
	if cfg.Disabled {
		return true
	}
	now := time.Now()
	if now.Sub(s.banStart) > cfg.Window {
		s.banStart, s.banTotal, s.banRejected = now, 0, 0
	}
	s.banTotal++
	if rejected {
		s.banRejected++
	}
	if s.banTotal >= cfg.MinShares && float64(s.banRejected) > cfg.RejectRatio*float64(s.banTotal) {
		keys := []string{"ip:" + s.ip}
		for _, w := range s.workers {
			if w.name == workerName {
				keys = append(keys, "worker:"+w.name)
			}
		}
		s.srv.ban(keys...)
		s.srv.log.Info("banned for rejected shares", zap.String("ip", s.ip), zap.String("worker", workerName),
			zap.Int("rejected", s.banRejected), zap.Int("total", s.banTotal))
		s.closeAfterFlush(CloseBanned)
		return false
	}
	return true
}

// submit checks the session-level rules (subscribed 25, worker authorized
// 24) and hands the share to the shares.Session (stale 21, extranonce2 size,
// ntime range, version bits 20, low difficulty 23, duplicate 22). A block
// candidate goes to the BlockSubmitter, then the share to the Recorder,
// before the caller replies. It returns the code and error of a rejection
// (with the job's age for a stale job this connection was sent), or a nil
// error for an accepted, recorded share.
func (s *Session) submit(req *message.Request, now time.Time) (int, time.Duration, error) {
	reject := func(err error) (int, time.Duration, error) {
		code, known := StratumCode(err)
		if !known {
			s.srv.log.Error("share check failed", zap.Error(err))
		}
		return code, 0, err
	}
	n := len(req.Params)
	if n != 5 && n != 6 {
		return reject(fmt.Errorf("%w: mining.submit takes 5 or 6 params, got %d", ErrBadParams, n))
	}
	var p [6]string
	for i := range n {
		v, ok := req.String(i)
		if !ok {
			return reject(fmt.Errorf("%w: param %d is not a string", ErrBadParams, i))
		}
		p[i] = v
	}
	if !s.subscribed {
		return reject(ErrNotSubscribed)
	}
	var w *worker
	for i := range s.workers {
		if s.workers[i].name == p[0] {
			w = &s.workers[i]
			break
		}
	}
	if w == nil {
		return reject(fmt.Errorf("%w: %q is not authorized on this connection", ErrUnauthorized, p[0]))
	}
	sub, err := shares.ParseSubmit(p[:n])
	if err != nil {
		return reject(err)
	}
	s.mu.Lock()
	if sub.HasVersionBits {
		// Some firmware submits the whole rolled version instead of the
		// bits; that is unambiguous when its part outside the mask is the
		// job's version, so keep the masked part.
		mask := s.shares.VersionMask()
		if wk := s.shares.Work(sub.JobID); wk != nil {
			if outside := sub.VersionBits &^ mask; outside != 0 && outside == wk.Job().Version&^mask {
				sub.VersionBits &= mask
			}
		}
	}
	var res shares.Result
	err = s.shares.Submit(&sub, &res)
	var cand shares.Candidate
	if err == nil && res.Block {
		cand = s.shares.Candidate(&res)
		cand.Worker = w.name
	}
	var age time.Duration
	if errors.Is(err, shares.ErrJobNotFound) {
		if at, ok := s.srv.jobCreated(sub.JobID); ok {
			age = max(now.Sub(at), time.Nanosecond)
		}
	}
	s.mu.Unlock()
	if err != nil {
		code, _, err := reject(err)
		return code, age, err
	}
	ctx, cancel := s.recordCtx()
	defer cancel()
	if res.Block {
		s.srv.stats.Blocks.Add(1)
		s.srv.log.Info("block candidate", zap.String("worker", w.name), zap.Int64("height", res.Job.Height),
			zap.Stringer("hash", res.Hash))
		if s.srv.cfg.Blocks != nil {
			rep, err := s.srv.cfg.Blocks.Submit(ctx, cand)
			switch {
			case err != nil:
				s.srv.stats.BlockErrors.Add(1)
				s.srv.log.Error("submit block failed", zap.Int64("height", res.Job.Height), zap.Error(err))
			case !rep.Confirmed:
				s.srv.stats.BlockErrors.Add(1)
				s.srv.log.Error("block not confirmed by any node", zap.Int64("height", res.Job.Height),
					zap.Stringer("hash", rep.Hash), zap.Any("answers", rep.Answers))
			default:
				s.srv.stats.BlocksConfirmed.Add(1)
				if n := s.srv.cfg.BlockFound; n != nil {
					// The next job need not wait for the node's notice;
					// not on this goroutine, the miner is waiting.
					go func() {
						ctx, cancel := context.WithTimeout(s.srv.base, 30*time.Second)
						defer cancel()
						if err := n.NewBlockFound(ctx); err != nil {
							s.srv.log.Warn("refresh after own block", zap.Error(err))
						}
					}()
				}
			}
		}
	}
	share := shares.Share{
		Worker:         w.name,
		Address:        w.address,
		WorkerName:     w.suffix,
		Difficulty:     res.Difficulty,
		HashDifficulty: res.HashDifficulty,
		JobHeight:      res.Job.Height,
		Time:           now,
		Block:          res.Block,
	}
	if err := s.srv.cfg.Recorder.Record(ctx, share); err != nil {
		s.srv.log.Error("record share failed", zap.String("worker", w.name), zap.Error(err))
		return message.CodeOther, 0, fmt.Errorf("%w: %v", ErrNotRecorded, err)
	}
	s.srv.stats.Accepted.Add(1)
	s.srv.stats.addAcceptedDifficulty(res.Difficulty)
	s.accountShare(now)
	return 0, 0, nil
}
