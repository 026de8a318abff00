package stratum

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum/message"
)

// The submit path: mining.submit is checked, judged, recorded and answered
// here, and counted toward the connection's ban.

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

// recordCtx bounds how long a share may wait for the recorder.
func (s *Session) recordCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.srv.base, 30*time.Second)
}
