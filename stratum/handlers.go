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

	"github.com/lode-pool/lode/internal/btcaddr"
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
	// An admin ban names the worker as the API shows it (canonical); the
	// miner may spell its address otherwise.
	if s.srv.banned("worker:"+w.name) || s.srv.banned("worker:"+w.canonicalName()) {
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

// parseWorker checks "address[.worker]" against the configured network. The
// address is kept in its canonical spelling (btcaddr.Canonical: lowercase
// bech32), which is what the ledger, the API and lodectl key by; the worker
// name after the first '.' must pass validWorkerName.
func (s *Session) parseWorker(user string) (worker, error) {
	if len(user) > 256 {
		return worker{}, errors.New("username too long")
	}
	addr, suffix, dotted := strings.Cut(user, ".")
	canonical, err := btcaddr.Canonical(addr, s.srv.cfg.Network)
	if err != nil {
		return worker{}, err
	}
	if dotted {
		if err := validWorkerName(suffix); err != nil {
			return worker{}, err
		}
	}
	return worker{name: user, address: canonical, suffix: suffix}, nil
}

// maxWorkerNameLen bounds the worker name after the address.
const maxWorkerNameLen = 64

// validWorkerName says what a worker name (the part after "address.") may
// hold: 1 to 64 bytes of printable ASCII other than space and the characters
// that break what the name is written into: '|' separates the fields of the
// ledger's recent-share entries, quotes, '\', '<', '>', '&' and '`' are
// markup or shell syntax. Control characters would reach the operator's
// terminal (lodectl) and logs; non-ASCII is refused because look-alike
// letters would let one worker pose as another.
func validWorkerName(name string) error {
	if name == "" {
		return errors.New("empty worker name after the '.' (use the bare address, or address.name)")
	}
	if len(name) > maxWorkerNameLen {
		return fmt.Errorf("worker name longer than %d characters", maxWorkerNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(workerNameForbidden, c) >= 0 {
			return fmt.Errorf("worker name may only hold printable ASCII without spaces or any of %s (byte 0x%02x at %d)",
				workerNameForbidden, c, i)
		}
	}
	return nil
}

// workerNameForbidden are the printable ASCII characters refused in worker
// names (see validWorkerName).
const workerNameForbidden = "|\"'`<>&\\"

// canonicalName is the worker's username with the canonical address: the
// name its statistics are kept under, whatever case the miner typed the
// address in.
func (w *worker) canonicalName() string {
	if w.suffix == "" {
		return w.address
	}
	return w.address + "." + w.suffix
}

// minerDifficulty checks a difficulty a miner asks for (suggest_difficulty,
// suggest_target, the d= password option): it must be a positive, finite
// number. It is clamped to the port's bounds (and the miner's floor) when
// applied, so any accepted value ends up in range.
func minerDifficulty(d float64) (float64, bool) {
	if !(d > 0) || math.IsInf(d, 0) {
		return 0, false
	}
	return d, true
}

// passwordDifficulty finds "d=<difficulty>" among comma-separated password
// options (e.g. "x,d=0.5").
func passwordDifficulty(pass string) (float64, bool) {
	for opt := range strings.SplitSeq(pass, ",") {
		opt = strings.TrimSpace(opt)
		if v, ok := strings.CutPrefix(opt, "d="); ok {
			d, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			if d, ok := minerDifficulty(d); ok {
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
				// A bit count is a whole number 0..32; anything else
				// (1e300, NaN, 2^63: int() of those is not defined) is
				// a request the pool cannot meet.
				f, ok := message.ParseNumber(raw)
				if !ok || f < 0 || f > 32 || f != math.Trunc(f) {
					add(ext, []byte("false"))
					continue
				}
				minBits = int(f)
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
			// 0 means no floor; NaN and ±Inf never get here
			// (ParseNumber refuses them), the check stays as the rule.
			f, ok := message.ParseNumber(opts["minimum-difficulty.value"])
			if !ok || !(f >= 0) || math.IsInf(f, 0) {
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

// setMinDifficulty sets the miner's floor (mining.configure
// minimum-difficulty); f is finite and not negative. A floor above the port's
// maximum is kept as the maximum, so the difficulty stays in the port's range.
func (s *Session) setMinDifficulty(f float64) {
	if !(f >= 0) || math.IsInf(f, 0) {
		return // handleConfigure refuses these; never store a NaN floor
	}
	s.mu.Lock()
	s.minDiff = min(f, s.srv.t().ports[s.port].MaxDifficulty)
	raise := s.diff < f
	d := s.diff
	s.mu.Unlock()
	if raise {
		s.setDifficulty(d) // clamping raises it to the new floor
	}
}

// diff1 is the difficulty-1 target 0xFFFF × 2^208.
var diff1 = new(big.Int).Lsh(big.NewInt(0xffff), 208)

// handleSuggestTarget answers mining.suggest_target: a share target as 1 to
// 64 hex digits (a positive 256-bit number, no sign or prefix), applied as
// the difficulty diff1/target.
func (s *Session) handleSuggestTarget(req *message.Request) {
	h, ok := req.String(0)
	if !ok || len(h) == 0 || len(h) > 64 || !isHex(h) {
		s.replyError(req, message.CodeOther, "Invalid target: want 1 to 64 hex digits")
		return
	}
	t, _ := new(big.Int).SetString(h, 16)
	if t.Sign() <= 0 {
		s.replyError(req, message.CodeOther, "Invalid target: must be positive")
		return
	}
	q, _ := new(big.Float).Quo(new(big.Float).SetInt(diff1), new(big.Float).SetInt(t)).Float64()
	d, ok := minerDifficulty(q)
	if !ok {
		s.replyError(req, message.CodeOther, "Invalid target")
		return
	}
	s.setDifficulty(d)
	s.replyTrue(req)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
