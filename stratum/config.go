package stratum

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/settings"
	"github.com/lode-pool/lode/stratum/message"
)

// Port is one listening address with its own difficulty bounds.
type Port struct {
	// Address to listen on, e.g. ":3333" or "127.0.0.1:0".
	Address string `yaml:"listen"`
	// StartDifficulty is the difficulty a new connection starts at (default
	// MinDifficulty, or 1 when both are unset).
	StartDifficulty float64 `yaml:"start_difficulty"`
	// MinDifficulty and MaxDifficulty clamp vardiff and miner suggestions
	// (defaults 1e-8 and 1e15).
	MinDifficulty float64 `yaml:"min_difficulty"`
	MaxDifficulty float64 `yaml:"max_difficulty"`
	// TLSCertFile and TLSKeyFile enable TLS on this port when both are set.
	TLSCertFile string `yaml:"tls_cert"`
	TLSKeyFile  string `yaml:"tls_key"`
}

// Vardiff tunes per-connection difficulty retargeting. In lode.yaml its
// keys sit directly under stratum: (share_interval, retarget_interval, …).
type Vardiff struct {
	// Disabled keeps every connection at its start (or suggested) difficulty.
	Disabled bool `yaml:"vardiff_disabled"`
	// TargetInterval is the wanted time between shares (default 10 s).
	TargetInterval time.Duration `yaml:"share_interval"`
	// RetargetTime is the longest time between retargets (default 60 s).
	RetargetTime time.Duration `yaml:"retarget_interval"`
	// RetargetShares retargets early after this many shares (default 20).
	RetargetShares int `yaml:"retarget_shares"`
	// MaxStep bounds one change: ×MaxStep up, ÷MaxStep down (default 4).
	MaxStep float64 `yaml:"vardiff_max_step"`
}

// Ban configures banning of an IP or worker that submits mostly rejected
// shares.
type Ban struct {
	// Disabled turns bans off.
	Disabled bool `yaml:"-"`
	// Enabled, when set, overrides Disabled: it is how lode.yaml says it
	// (ban.enabled, default true), where a missing key must not mean off.
	Enabled *bool `yaml:"enabled"`
	// Window is the counting window (default 5 min).
	Window time.Duration `yaml:"window"`
	// MinShares is the number of submits in a window before the ratio is
	// judged (default 100).
	MinShares int `yaml:"min_shares"`
	// RejectRatio above which the connection is closed (and its IP banned
	// when IP is set) (default 0.9). Stale shares of jobs this server sent
	// do not count.
	RejectRatio float64 `yaml:"reject_ratio"`
	// IP bans the offending connection's IP address for Duration as well
	// (default false: only the connection is closed, because many honest
	// miners may share one IP behind a NAT or a proxy).
	IP bool `yaml:"ban_ip"`
	// Duration of a ban (default 10 min).
	Duration time.Duration `yaml:"duration"`
}

// Config configures a Server. Jobs, Validator and Recorder are required.
//
// Config is also the stratum: section of lode.yaml: the daemon decodes the
// file into it (yaml keys on the fields; fields tagged "-" are wired by the
// daemon: the network, the instance id, the components), starting from
// DefaultConfig, and ValidateSettings checks it with every problem named by
// its key. A new setting is a new field with a yaml key here, its default
// in DefaultConfig and its check in ValidateSettings; the file, -check-config
// and the daemon pick it up from there.
type Config struct {
	Ports []Port `yaml:"ports"`
	// Network is the chain payout addresses must belong to (default mainnet).
	Network *chaincfg.Params `yaml:"-"`

	// InstanceID prefixes every extranonce1 so several Lode processes sharing
	// a ledger never hand out the same one (0–2 bytes; the rest of the 4
	// bytes is a per-process counter).
	InstanceID []byte `yaml:"-"`
	// VersionMask is the pool's version-rolling mask (default 1fffe000).
	VersionMask uint32 `yaml:"-"`
	// VersionMaskHex, when set, overrides VersionMask: it is how lode.yaml
	// writes the mask (version_mask: 1fffe000, hex, within BIP320's bits).
	VersionMaskHex string `yaml:"version_mask"`
	// Extranonce2Size is announced in subscribe when no job exists yet
	// (default 8); otherwise the current job's size is used.
	Extranonce2Size int `yaml:"extranonce2_size"`

	MaxLineLength       int           `yaml:"max_line_bytes"`         // default 16 KiB; a longer line closes the connection
	AuthorizeTimeout    time.Duration `yaml:"authorize_timeout"`      // default 15 s from connect to first successful authorize
	IdleTimeout         time.Duration `yaml:"idle_timeout"`           // default 10 min without a line from an authorized miner
	WriteTimeout        time.Duration `yaml:"write_timeout"`          // default 10 s per flush
	MaxPending          int           `yaml:"max_pending_bytes"`      // outbound queue limit in bytes (default 256 KiB); over it → slow consumer
	MaxConnections      int           `yaml:"max_connections"`        // default 100000
	MaxConnectionsPerIP int           `yaml:"max_connections_per_ip"` // default 0 = unlimited
	MaxProtocolErrors   int           `yaml:"max_protocol_errors"`    // malformed messages tolerated before close (default 3)
	ReconnectWait       int           `yaml:"reconnect_wait"`         // seconds sent in client.reconnect on shutdown (default 0)
	// WriteBuffer sets SO_SNDBUF on accepted connections (0 = the OS
	// default). A small value bounds kernel memory per connection and makes
	// a stalled miner reach the MaxPending limit sooner.
	WriteBuffer int `yaml:"write_buffer"`
	// ReadLoop is how plain TCP connections wait for their next line:
	// "epoll" (the default; Linux) has one event loop wait on every socket
	// and a handler from a shared pool read the lines once they are there,
	// so a connection holds no goroutine of its own (evloop_linux.go);
	// "goroutine" gives each connection a reader goroutine, which costs a
	// 2 KiB stack and its descriptor per connection. TLS connections, and
	// every connection where epoll is missing, use a reader goroutine.
	ReadLoop string `yaml:"read_loop"`
	// ShutdownTimeout bounds the graceful shutdown Run performs when its
	// context ends (default 5 s). The daemon's own shutdown_timeout bounds
	// the whole process's.
	ShutdownTimeout time.Duration `yaml:"-"`

	Vardiff Vardiff `yaml:",inline"`
	Ban     Ban     `yaml:"ban"`

	Jobs       JobSource      `yaml:"-"`
	Validator  ShareValidator `yaml:"-"`
	Blocks     BlockSubmitter `yaml:"-"` // may be nil (shares only; block candidates are logged)
	BlockFound BlockNotifier  `yaml:"-"` // optional: told after a block of ours is confirmed
	Recorder   Recorder       `yaml:"-"`
	Observer   Observer       `yaml:"-"` // optional: rejections, for statistics
	Logger     *zap.Logger    `yaml:"-"`

	// Presence, optional, receives the workers' connected time and user
	// agents every PresenceInterval (default 1 min, 1 s to 1 min), off the
	// share path (presence.go).
	Presence         PresenceRecorder `yaml:"-"`
	PresenceInterval time.Duration    `yaml:"-"`
}

// MaxPortDifficulty bounds a port's maximum difficulty (the share ledger's
// largest).
const MaxPortDifficulty = 1e15

// The values of Config.ReadLoop.
const (
	ReadLoopEpoll     = "epoll"
	ReadLoopGoroutine = "goroutine"
)

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
	if c.VersionMaskHex != "" {
		if v, err := ParseVersionMask(c.VersionMaskHex); err == nil { // else ValidateSettings says why
			c.VersionMask = v
		}
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
	if c.ReadLoop == "" {
		c.ReadLoop = ReadLoopEpoll
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
	if b.Enabled != nil {
		b.Disabled = !*b.Enabled
	}
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

// The settings a pool runs with when lode.yaml leaves them out
// (DefaultConfig). They differ from the zero-value defaults of a Config
// built in code where a public pool needs limits a test or a benchmark
// does not: connections per IP, a stricter ban.
const (
	DefaultListen             = "0.0.0.0:3333"
	DefaultPortStart          = 1024
	DefaultPortMin            = 64
	DefaultPortMax            = 1 << 40
	DefaultShareInterval      = 10 * time.Second
	DefaultRetargetInterval   = 90 * time.Second
	DefaultFileMaxConnections = 50000
	DefaultMaxPerIP           = 1000
	DefaultBanWindow          = 10 * time.Minute
	DefaultBanMinShares       = 100
	DefaultBanRejectRatio     = 0.5
	DefaultBanDuration        = time.Hour
)

// DefaultConfig is lode.yaml's stratum: section with nothing set: one port
// on DefaultListen, every other setting filled in (lode.example.yaml lists
// the same values).
func DefaultConfig() Config {
	on := true
	c := Config{
		Ports:               []Port{{Address: DefaultListen, StartDifficulty: DefaultPortStart, MinDifficulty: DefaultPortMin, MaxDifficulty: DefaultPortMax}},
		VersionMaskHex:      fmt.Sprintf("%08x", DefaultVersionMask),
		MaxConnections:      DefaultFileMaxConnections,
		MaxConnectionsPerIP: DefaultMaxPerIP,
		Vardiff:             Vardiff{TargetInterval: DefaultShareInterval, RetargetTime: DefaultRetargetInterval},
		Ban: Ban{Enabled: &on, Window: DefaultBanWindow, MinShares: DefaultBanMinShares,
			RejectRatio: DefaultBanRejectRatio, Duration: DefaultBanDuration},
	}.withDefaults()
	c.Network, c.Logger, c.ShutdownTimeout = nil, nil, 0 // wired by the daemon
	return c
}

// ParseVersionMask reads a version-rolling mask written in hex (an
// optional 0x, up to 8 digits) and checks it is within BIP320's 1fffe000.
func ParseVersionMask(s string) (uint32, error) {
	var v uint32
	h := strings.TrimPrefix(s, "0x")
	if len(h) == 0 || len(h) > 8 {
		return 0, fmt.Errorf("want up to 8 hex digits, got %q", s)
	}
	if _, err := fmt.Sscanf(h, "%x", &v); err != nil {
		return 0, fmt.Errorf("want hex, got %q", s)
	}
	if v&^DefaultVersionMask != 0 {
		return 0, fmt.Errorf("%08x has bits outside BIP320's 1fffe000", v)
	}
	return v, nil
}

// ConfigError is a bad setting, named by its key in lode.yaml's stratum:
// section.
type ConfigError = settings.Error

// ValidateSettings checks the settings as they are, not the wired
// components, and returns every problem at once, each a *ConfigError
// naming its key. lode.yaml's section, decoded over DefaultConfig, holds
// every value, so a zero there was written in the file and is refused
// where it makes no sense; Validate applies the defaults of a Config built
// in code first. A Config without ports passes: a process without the
// stratum role has none to run (New requires one).
func (c Config) ValidateSettings() error {
	problems := settings.Problems{Section: "stratum"}
	bad := problems.Add
	if c.VersionMaskHex != "" {
		if _, err := ParseVersionMask(c.VersionMaskHex); err != nil {
			bad("version_mask", "%v", err)
		}
	}
	for i, p := range c.Ports {
		key := fmt.Sprintf("ports[%d]", i)
		checkListen(bad, key+".listen", p.Address)
		// Written so NaN fails; an infinite maximum would let a miner's
		// suggestion reach a difficulty no target can express.
		if !(p.MinDifficulty > 0) {
			bad(key+".min_difficulty", "must be > 0, got %v", p.MinDifficulty)
		}
		if !(p.MaxDifficulty >= p.MinDifficulty) {
			bad(key+".max_difficulty", "must be >= min_difficulty (%v), got %v", p.MinDifficulty, p.MaxDifficulty)
		} else if !(p.MaxDifficulty <= MaxPortDifficulty) {
			bad(key+".max_difficulty", "must be at most %g, got %v", float64(MaxPortDifficulty), p.MaxDifficulty)
		}
		if !(p.StartDifficulty >= p.MinDifficulty && p.StartDifficulty <= p.MaxDifficulty) {
			bad(key+".start_difficulty", "must be within [min_difficulty, max_difficulty], got %v", p.StartDifficulty)
		}
		if (p.TLSCertFile == "") != (p.TLSKeyFile == "") {
			bad(key, "tls_cert and tls_key go together")
		}
	}
	if len(c.InstanceID) > 2 {
		bad("instance_id", "%d bytes: want at most 2", len(c.InstanceID))
	}
	if c.Extranonce2Size < 1 || c.Extranonce2Size > 8 {
		bad("extranonce2_size", "must be 1..8 (some ASICs fail above 8), got %d", c.Extranonce2Size)
	}
	// A miner's longest lines (mining.configure, a subscribe with a long
	// user agent, an authorize with a long worker name) fit in 512 bytes.
	if c.MaxLineLength < 512 {
		bad("max_line_bytes", "must be >= 512, got %d", c.MaxLineLength)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"authorize_timeout", c.AuthorizeTimeout}, {"idle_timeout", c.IdleTimeout}, {"write_timeout", c.WriteTimeout},
		{"share_interval", c.Vardiff.TargetInterval}, {"retarget_interval", c.Vardiff.RetargetTime}} {
		if d.v <= 0 {
			bad(d.key, "must be a positive duration, got %v", d.v)
		}
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"max_connections", c.MaxConnections}, {"max_pending_bytes", c.MaxPending},
		{"max_protocol_errors", c.MaxProtocolErrors}, {"retarget_shares", c.Vardiff.RetargetShares}} {
		if n.v < 1 {
			bad(n.key, "must be >= 1, got %d", n.v)
		}
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"max_connections_per_ip", c.MaxConnectionsPerIP}, {"reconnect_wait", c.ReconnectWait}, {"write_buffer", c.WriteBuffer}} {
		if n.v < 0 {
			bad(n.key, "must be >= 0 (0: %s), got %d", map[string]string{"max_connections_per_ip": "no limit",
				"reconnect_wait": "reconnect at once", "write_buffer": "the system's"}[n.key], n.v)
		}
	}
	if c.ReadLoop != "" && c.ReadLoop != ReadLoopEpoll && c.ReadLoop != ReadLoopGoroutine {
		bad("read_loop", "want %q or %q, got %q", ReadLoopEpoll, ReadLoopGoroutine, c.ReadLoop)
	}
	if !(c.Vardiff.MaxStep >= 1 && c.Vardiff.MaxStep <= 1e6) {
		bad("vardiff_max_step", "must be 1..1e6, got %v", c.Vardiff.MaxStep)
	}
	if b := c.Ban; !b.Disabled {
		if b.Window <= 0 {
			bad("ban.window", "must be a positive duration, got %v", b.Window)
		}
		if b.Duration <= 0 {
			bad("ban.duration", "must be a positive duration, got %v", b.Duration)
		}
		if !(b.RejectRatio > 0 && b.RejectRatio <= 1) {
			bad("ban.reject_ratio", "must be in (0, 1], got %v", b.RejectRatio)
		}
		if b.MinShares < 1 {
			bad("ban.min_shares", "must be >= 1, got %d", b.MinShares)
		}
	}
	return problems.Err()
}

// checkListen checks a listen address: host:port, the port 0 (any free
// one) to 65535.
func checkListen(bad func(string, string, ...any), key, v string) {
	_, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		bad(key, "want host:port, got %q", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad(key, "port must be a number from 0 to 65535, got %q", port)
	}
}

// Validate reports every configuration error (after defaults are applied):
// the settings' (ValidateSettings), at least one port, and the required
// components.
func (c Config) Validate() error {
	c = c.withDefaults()
	errs := []error{c.ValidateSettings()}
	if len(c.Ports) == 0 {
		errs = append(errs, errors.New("stratum config: no ports"))
	}
	if c.PresenceInterval < time.Second || c.PresenceInterval > time.Minute {
		return fmt.Errorf("stratum config: presence interval %v: want 1s..1m", c.PresenceInterval)
	}
	if c.Jobs == nil || c.Validator == nil || c.Recorder == nil {
		errs = append(errs, errors.New("stratum config: Jobs, Validator and Recorder are required"))
	}
	return errors.Join(errs...)
}
