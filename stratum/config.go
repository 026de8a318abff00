package stratum

import (
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/stratum/message"
)

// Port is one listening address with its own difficulty bounds.
type Port struct {
	// Address to listen on, e.g. ":3333" or "127.0.0.1:0".
	Address string
	// StartDifficulty is the difficulty a new connection starts at (default
	// MinDifficulty, or 1 when both are unset).
	StartDifficulty float64
	// MinDifficulty and MaxDifficulty clamp vardiff and miner suggestions
	// (defaults 1e-8 and 1e15).
	MinDifficulty float64
	MaxDifficulty float64
	// TLSCertFile and TLSKeyFile enable TLS on this port when both are set.
	TLSCertFile string
	TLSKeyFile  string
}

// Vardiff tunes per-connection difficulty retargeting.
type Vardiff struct {
	// Disabled keeps every connection at its start (or suggested) difficulty.
	Disabled bool
	// TargetInterval is the wanted time between shares (default 10 s).
	TargetInterval time.Duration
	// RetargetTime is the longest time between retargets (default 60 s).
	RetargetTime time.Duration
	// RetargetShares retargets early after this many shares (default 20).
	RetargetShares int
	// MaxStep bounds one change: ×MaxStep up, ÷MaxStep down (default 4).
	MaxStep float64
}

// Ban configures banning of an IP or worker that submits mostly rejected
// shares.
type Ban struct {
	// Disabled turns bans off.
	Disabled bool
	// Window is the counting window (default 5 min).
	Window time.Duration
	// MinShares is the number of submits in a window before the ratio is
	// judged (default 100).
	MinShares int
	// RejectRatio above which the connection is closed (and its IP banned
	// when IP is set) (default 0.9). Stale shares of jobs this server sent
	// do not count.
	RejectRatio float64
	// IP bans the offending connection's IP address for Duration as well
	// (default false: only the connection is closed, because many honest
	// miners may share one IP behind a NAT or a proxy).
	IP bool
	// Duration of a ban (default 10 min).
	Duration time.Duration
}

// Config configures a Server. Jobs, Validator and Recorder are required.
type Config struct {
	Ports []Port
	// Network is the chain payout addresses must belong to (default mainnet).
	Network *chaincfg.Params

	// InstanceID prefixes every extranonce1 so several Lode processes sharing
	// a ledger never hand out the same one (0–2 bytes; the rest of the 4
	// bytes is a per-process counter).
	InstanceID []byte
	// VersionMask is the pool's version-rolling mask (default 1fffe000).
	VersionMask uint32
	// Extranonce2Size is announced in subscribe when no job exists yet
	// (default 8); otherwise the current job's size is used.
	Extranonce2Size int

	MaxLineLength       int           // default 16 KiB; a longer line closes the connection
	AuthorizeTimeout    time.Duration // default 15 s from connect to first successful authorize
	IdleTimeout         time.Duration // default 10 min without a line from an authorized miner
	WriteTimeout        time.Duration // default 10 s per flush
	MaxPending          int           // outbound queue limit in bytes (default 256 KiB); over it → slow consumer
	MaxConnections      int           // default 100000
	MaxConnectionsPerIP int           // default 0 = unlimited
	MaxProtocolErrors   int           // malformed messages tolerated before close (default 3)
	ReconnectWait       int           // seconds sent in client.reconnect on shutdown (default 0)
	// WriteBuffer sets SO_SNDBUF on accepted connections (0 = the OS
	// default). A small value bounds kernel memory per connection and makes
	// a stalled miner reach the MaxPending limit sooner.
	WriteBuffer int
	// ShutdownTimeout bounds the graceful shutdown Run performs when its
	// context ends (default 5 s).
	ShutdownTimeout time.Duration

	Vardiff Vardiff
	Ban     Ban

	Jobs       JobSource
	Validator  ShareValidator
	Blocks     BlockSubmitter // may be nil (shares only; block candidates are logged)
	BlockFound BlockNotifier  // optional: told after a block of ours is confirmed
	Recorder   Recorder
	Observer   Observer // optional: rejections, for statistics
	Logger     *zap.Logger

	// Presence, optional, receives the workers' connected time and user
	// agents every PresenceInterval (default 15 s, 1 s to 1 min), off the
	// share path (presence.go).
	Presence         PresenceRecorder `yaml:"-"`
	PresenceInterval time.Duration    `yaml:"-"`
}

// MaxPortDifficulty bounds a port's maximum difficulty (the share ledger's
// largest).
const MaxPortDifficulty = 1e15

// Default values.
const (
	DefaultVersionMask      = 0x1fffe000
	DefaultExtranonce2Size  = 8
	DefaultMinDifficulty    = 1e-8
	DefaultMaxDifficulty    = 1e15
	extranonce1Size         = 4
	defaultMaxPending       = 256 << 10
	defaultMaxConnections   = 100000
	defaultMaxProtocolError = 3
)

func (c Config) withDefaults() Config {
	if c.Network == nil {
		c.Network = &chaincfg.MainNetParams
	}
	if c.VersionMask == 0 {
		c.VersionMask = DefaultVersionMask
	}
	if c.Extranonce2Size == 0 {
		c.Extranonce2Size = DefaultExtranonce2Size
	}
	if c.MaxLineLength == 0 {
		c.MaxLineLength = message.DefaultMaxLine
	}
	if c.AuthorizeTimeout == 0 {
		c.AuthorizeTimeout = 15 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxPending == 0 {
		c.MaxPending = defaultMaxPending
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultMaxConnections
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.PresenceInterval == 0 {
		c.PresenceInterval = DefaultPresenceInterval
	}
	if c.MaxProtocolErrors == 0 {
		c.MaxProtocolErrors = defaultMaxProtocolError
	}
	v := &c.Vardiff
	if v.TargetInterval == 0 {
		v.TargetInterval = 10 * time.Second
	}
	if v.RetargetTime == 0 {
		v.RetargetTime = 60 * time.Second
	}
	if v.RetargetShares == 0 {
		v.RetargetShares = 20
	}
	if v.MaxStep == 0 {
		v.MaxStep = 4
	}
	b := &c.Ban
	if b.Window == 0 {
		b.Window = 5 * time.Minute
	}
	if b.MinShares == 0 {
		b.MinShares = 100
	}
	if b.RejectRatio == 0 {
		b.RejectRatio = 0.9
	}
	if b.Duration == 0 {
		b.Duration = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	ports := make([]Port, len(c.Ports))
	for i, p := range c.Ports {
		if p.MinDifficulty == 0 {
			p.MinDifficulty = DefaultMinDifficulty
		}
		if p.MaxDifficulty == 0 {
			p.MaxDifficulty = DefaultMaxDifficulty
		}
		if p.StartDifficulty == 0 {
			p.StartDifficulty = max(1, p.MinDifficulty)
			p.StartDifficulty = min(p.StartDifficulty, p.MaxDifficulty)
		}
		ports[i] = p
	}
	c.Ports = ports
	return c
}

// Validate reports a configuration error (after defaults are applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.Ports) == 0 {
		return errors.New("stratum config: no ports")
	}
	for i, p := range c.Ports {
		if p.Address == "" {
			return fmt.Errorf("stratum config: port %d: empty address", i)
		}
		// Written so NaN fails; an infinite maximum would let a miner's
		// suggestion reach a difficulty no target can express.
		if !(p.MinDifficulty > 0 && p.MinDifficulty <= p.StartDifficulty && p.StartDifficulty <= p.MaxDifficulty &&
			p.MaxDifficulty <= MaxPortDifficulty) {
			return fmt.Errorf("stratum config: port %s: want 0 < min (%g) <= start (%g) <= max (%g)", p.Address, p.MinDifficulty, p.StartDifficulty, p.MaxDifficulty)
		}
		if (p.TLSCertFile == "") != (p.TLSKeyFile == "") {
			return fmt.Errorf("stratum config: port %s: TLS needs both cert and key files", p.Address)
		}
	}
	if len(c.InstanceID) > 2 {
		return fmt.Errorf("stratum config: instance id of %d bytes: want at most 2", len(c.InstanceID))
	}
	if c.Extranonce2Size < 1 || c.Extranonce2Size > 16 {
		return fmt.Errorf("stratum config: extranonce2 size %d: want 1..16", c.Extranonce2Size)
	}
	if !(c.Vardiff.MaxStep >= 1 && c.Vardiff.MaxStep <= 1e6) {
		return fmt.Errorf("stratum config: vardiff max step %g: want 1..1e6", c.Vardiff.MaxStep)
	}
	if !c.Ban.Disabled && !(c.Ban.RejectRatio > 0 && c.Ban.RejectRatio <= 1) {
		return fmt.Errorf("stratum config: ban reject ratio %g: want (0, 1]", c.Ban.RejectRatio)
	}
	if c.PresenceInterval < time.Second || c.PresenceInterval > time.Minute {
		return fmt.Errorf("stratum config: presence interval %v: want 1s..1m", c.PresenceInterval)
	}
	if c.Jobs == nil || c.Validator == nil || c.Recorder == nil {
		return errors.New("stratum config: Jobs, Validator and Recorder are required")
	}
	return nil
}
