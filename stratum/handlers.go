package stratum

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcutil"

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
