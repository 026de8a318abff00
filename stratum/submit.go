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

// The submit path: mining.submit is checked and judged on the connection's
// handler, an accepted share is handed to the Recorder, and the connection
// goes on reading while the share waits to be durable (pipelining). Its
// reply, true, is written when the recorder says the share is durable;
// replies leave in request order (see pipeline.go), so an error or any
// other reply to a later request waits behind an earlier share's true.

// maxPipelined bounds the replies a connection may have waiting behind a
// share that is not durable yet (shares in flight plus the replies queued
// behind them). At the bound the reader stops reading that connection until
// a share is answered: backpressure instead of unbounded memory. One
// connection at 20,000 shares/s with a 5 ms Redis round trip has about 100
// in flight.
const maxPipelined = 256

// maxBlocksInFlight bounds the block submissions a connection has running.
const maxBlocksInFlight = 4

// blockSubmitTimeout bounds one submission of a found block to the nodes
// (the BlockSubmitter retries further on its own schedule).
const blockSubmitTimeout = 30 * time.Second

// handleSubmit checks and judges one share and hands an accepted one to the
// recorder. It returns false when the session must end (ban).
func (s *Session) handleSubmit(req *message.Request) bool {
	now := time.Now()
	code, age, err := s.submit(req, now)
	if err == nil {
		return s.countForBan(false)
	}
	workerName, _ := req.String(0) // copied only for a rejection's reports
	jobID, _ := req.String(1)
	s.srv.stats.Rejected[code-20].Add(1)
	stale := code == message.CodeJobNotFound && age > 0
	if stale {
		s.srv.stats.stale(age)
	}
	if obs := s.srv.cfg.Observer; obs != nil {
		rj := Rejection{Worker: workerName, Remote: s.conn.RemoteAddr().String(), Code: code, Err: err, JobAge: age, Time: now}
		if w := s.workerNamed(workerName); w != nil {
			// Counted in the worker's statistics under the name its
			// accepted shares are recorded under.
			rj.Worker, rj.Address = w.canonicalName(), w.address
		}
		obs.ShareRejected(rj)
	}
	if ce := s.srv.log.Check(zap.DebugLevel, "share rejected"); ce != nil {
		ce.Write(zap.String("worker", workerName), zap.String("job_id", jobID), zap.Int("code", code), zap.Error(err))
	}
	s.srv.stats.Submit.Observe(time.Since(now))
	s.replyError(req, code, rejectMessage(err))
	if stale {
		// A share for a job this server sent that a new block made stale
		// (also one queued behind the block on a fast connection) is not
		// misbehaviour: it counts for nothing toward a ban.
		return true
	}
	return s.countForBan(true)
}

// workerNamed returns the worker authorized on this connection as name, or
// nil.
func (s *Session) workerNamed(name string) *worker {
	for i := range s.workers {
		if s.workers[i].name == name {
			return &s.workers[i]
		}
	}
	return nil
}

func rejectMessage(err error) string {
	msg := err.Error()
	if msg == "" {
		return "Rejected"
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// countForBan keeps the reject ratio of this connection over the ban
// window. Over the threshold the connection is closed, and its IP is banned
// only when the operator chose IP bans (Ban.IP): many honest miners may
// share an IP (NAT, a farm proxy). Worker names are never banned for bad
// shares: anyone can authorize any name, so a ban on a name would let one
// connection ban a victim's workers.
func (s *Session) countForBan(rejected bool) bool {
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
		if cfg.IP {
			s.srv.ban("ip:" + s.ip)
		}
		s.srv.stats.BannedConnections.Add(1)
		s.srv.log.Info("connection closed for rejected shares", zap.String("ip", s.ip), zap.Bool("ip_banned", cfg.IP),
			zap.Int("rejected", s.banRejected), zap.Int("total", s.banTotal))
		s.closeAfterFlush(CloseBanned)
		return false
	}
	return true
}

// submit checks the session-level rules (subscribed 25, worker authorized
// 24) and hands the share to the shares.Session (stale 21, extranonce2 size,
// ntime range, version bits 20, low difficulty 23, duplicate 22). An
// accepted share is handed to the Recorder (answered on completion, see
// pipeline.go); a block candidate also goes to the BlockSubmitter on a
// goroutine of its own. It returns the code and error of a rejection (with
// the job's age for a stale job this server prepared), or a nil error for
// an accepted share.
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
	w := s.workerNamed(p[0])
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
	if res.Block {
		s.srv.stats.Blocks.Add(1)
		s.srv.log.Info("block candidate", zap.String("worker", w.name), zap.Int64("height", res.Job.Height),
			zap.Stringer("hash", res.Hash))
		if s.srv.cfg.Blocks != nil {
			// Not on the miner's path: the share is answered as soon as it
			// is durable, whatever the node does. A connection has at most
			// maxBlocksInFlight submissions running; past that its handler
			// waits (on test networks nearly every share is a block, and a
			// slow node must not collect goroutines without bound).
			if s.blockSlots == nil {
				s.blockSlots = make(chan struct{}, maxBlocksInFlight)
			}
			s.blockSlots <- struct{}{}
			go s.srv.submitBlock(cand, s.blockSlots)
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
	if res.Block {
		h := res.Hash // allocated for block shares only
		share.BlockHash = &h
	}
	s.recordShare(req, &share, now)
	return 0, 0, nil
}

// submitBlock hands a block candidate to the BlockSubmitter, then frees its
// slot; it must be run as a goroutine.
func (srv *Server) submitBlock(cand shares.Candidate, slots chan struct{}) {
	defer func() { <-slots }()
	ctx, cancel := context.WithTimeout(srv.base, blockSubmitTimeout)
	defer cancel()
	height := cand.Job.Height
	rep, err := srv.cfg.Blocks.Submit(ctx, cand)
	switch {
	case err != nil:
		srv.stats.BlockErrors.Add(1)
		srv.log.Error("submit block failed", zap.Int64("height", height), zap.Error(err))
	case !rep.Confirmed:
		srv.stats.BlockErrors.Add(1)
		srv.log.Error("block not confirmed by any node (yet)", zap.Int64("height", height),
			zap.Stringer("hash", rep.Hash), zap.Any("answers", rep.Answers))
	default:
		srv.stats.BlocksConfirmed.Add(1)
		if n := srv.cfg.BlockFound; n != nil {
			// The next job need not wait for the node's notice.
			if err := n.NewBlockFound(ctx); err != nil {
				srv.log.Warn("refresh after own block", zap.Error(err))
			}
		}
	}
}
