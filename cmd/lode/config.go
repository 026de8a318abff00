package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"go.yaml.in/yaml/v3"

	"github.com/lode-pool/lode/payouts/payment"
)

// Roles a process can run. Several stratum frontends may share one Redis.
// The unlocker and payouts roles run under a Redis lease (redis.lease_ttl):
// list them in as many processes as you like, one process at a time holds
// each and the others stand by to take over.
const (
	RoleStratum  = "stratum"
	RoleAPI      = "api"
	RoleUnlocker = "unlocker"
	RolePayouts  = "payouts"
)

var allRoles = []string{RoleStratum, RoleAPI, RoleUnlocker, RolePayouts}

// Config is the whole lode.yaml. Every field has a default (see Defaults and
// lode.example.yaml) except pool.payout_address and the node's credentials.
type Config struct {
	// Roles this process runs (default: all four).
	Roles    []string       `yaml:"roles"`
	Network  string         `yaml:"network"` // mainnet, testnet3, signet, regtest
	Log      LogConfig      `yaml:"log"`
	Node     NodeConfig     `yaml:"node"`
	Redis    RedisConfig    `yaml:"redis"`
	Pool     PoolConfig     `yaml:"pool"`
	Stratum  StratumConfig  `yaml:"stratum"`
	Ledger   LedgerConfig   `yaml:"ledger"`
	Unlocker UnlockerConfig `yaml:"unlocker"`
	Payouts  PayoutsConfig  `yaml:"payouts"`
	API      APIConfig      `yaml:"api"`
	// ShutdownTimeout bounds the graceful shutdown after SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// LogConfig selects zap's output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (production) or console (development)
}

// Secret is a value read from an environment variable or a file, never
// written in the config itself. At most one of Env and File is set.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// IsSet reports whether a source is configured.
func (s Secret) IsSet() bool { return s.Env != "" || s.File != "" }

// Resolve reads the secret. Trailing newlines of files are dropped.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", s.File)
		}
		return v, nil
	}
	return "", nil
}

// NodeConfig is the Bitcoin node (Bitcoin Core or btcd).
type NodeConfig struct {
	RPCAddress  string `yaml:"rpc_address"` // host:port
	RPCUser     string `yaml:"rpc_user"`
	RPCPassword Secret `yaml:"rpc_password"`
	// RPCCookieFile is Bitcoin Core's .cookie (user:password); used instead
	// of rpc_user/rpc_password when set. Read at start (to check it) and
	// again by the node client whenever the node answers 401, since Core
	// writes a new cookie on every start: a Core restart needs no lode restart.
	RPCCookieFile string `yaml:"rpc_cookie_file"`
	// TLS enables HTTPS to the RPC port (btcd's default; Core has none).
	TLS bool `yaml:"tls"`
	// ZMQHashBlock is Core's zmqpubhashblock endpoint, e.g. tcp://127.0.0.1:28332.
	ZMQHashBlock string `yaml:"zmq_hashblock"`
	// PollInterval is the getbestblockhash fallback poll.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RefreshInterval issues a non-clean job with new transactions.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	Timeout         time.Duration `yaml:"timeout"`
}

// RedisConfig is the share ledger and accounting store.
type RedisConfig struct {
	Address  string `yaml:"address"`
	Password Secret `yaml:"password"`
	DB       int    `yaml:"db"`
	Prefix   string `yaml:"prefix"`
	// LeaseTTL is how long the unlocker and payouts leases last without
	// renewal: a process that dies holding one is replaced this long after
	// its last renewal (renewed every third of it).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// PoolConfig is what makes the coinbase and the accounting.
type PoolConfig struct {
	PayoutAddress string  `yaml:"payout_address"` // receives the coinbase; funds payouts
	Tag           string  `yaml:"tag"`            // pushed into the coinbase scriptSig
	InstanceID    int     `yaml:"instance_id"`    // prefixes extranonce1; unique per stratum process
	FeePercent    float64 `yaml:"fee_percent"`
	// PPLNSWindow is X in N = X × network difficulty.
	PPLNSWindow float64 `yaml:"pplns_window"`
	// PPLNSMinWindow is a floor for N, in difficulty (0: none). On regtest
	// X × network difficulty is far below one share; a floor keeps a
	// useful window there.
	PPLNSMinWindow float64 `yaml:"pplns_min_window"`
}

// StratumConfig is the miners' side.
type StratumConfig struct {
	Ports            []PortConfig  `yaml:"ports"`
	VersionMask      string        `yaml:"version_mask"` // hex
	Extranonce2Size  int           `yaml:"extranonce2_size"`
	ShareInterval    time.Duration `yaml:"share_interval"`    // vardiff target
	RetargetInterval time.Duration `yaml:"retarget_interval"` // vardiff
	MaxLineBytes     int           `yaml:"max_line_bytes"`
	AuthorizeTimeout time.Duration `yaml:"authorize_timeout"`
	IdleTimeout      time.Duration `yaml:"idle_timeout"`
	MaxConnections   int           `yaml:"max_connections"`
	MaxPerIP         int           `yaml:"max_connections_per_ip"`
	Ban              BanConfig     `yaml:"ban"`
}

// PortConfig is one listening port with its difficulty range.
type PortConfig struct {
	Listen          string  `yaml:"listen"`
	StartDifficulty float64 `yaml:"start_difficulty"`
	MinDifficulty   float64 `yaml:"min_difficulty"`
	MaxDifficulty   float64 `yaml:"max_difficulty"`
	TLSCert         string  `yaml:"tls_cert"`
	TLSKey          string  `yaml:"tls_key"`
}

// BanConfig closes a connection whose rejected ratio exceeds a threshold,
// and bans its IP for Duration when BanIP is set.
type BanConfig struct {
	Enabled     bool          `yaml:"enabled"`
	Window      time.Duration `yaml:"window"`
	MinShares   int           `yaml:"min_shares"`
	RejectRatio float64       `yaml:"reject_ratio"`
	Duration    time.Duration `yaml:"duration"`
	BanIP       bool          `yaml:"ban_ip"`
}

// LedgerConfig is the group commit to Redis.
type LedgerConfig struct {
	BatchSize int           `yaml:"batch_size"`
	BatchWait time.Duration `yaml:"batch_wait"`
	SpoolDir  string        `yaml:"spool_dir"`
}

// UnlockerConfig follows found blocks to maturity.
type UnlockerConfig struct {
	Interval time.Duration `yaml:"interval"`
	Maturity int           `yaml:"maturity"`
}

// PayoutsConfig pays balances on chain.
type PayoutsConfig struct {
	Interval         time.Duration `yaml:"interval"`
	Threshold        int64         `yaml:"threshold"` // satoshis
	MaxOutputs       int           `yaml:"max_outputs"`
	Signing          string        `yaml:"signing"`        // hot or cold
	Key              Secret        `yaml:"key"`            // WIF, hot signing only
	FeeRateFloor     int64         `yaml:"fee_rate_floor"` // sat/vB
	FeeRateCap       int64         `yaml:"fee_rate_cap"`   // sat/vB
	FeePayer         string        `yaml:"fee_payer"`      // pool or miners
	UnconfirmedAlert time.Duration `yaml:"unconfirmed_alert"`
}

// APIConfig is the HTTP side.
type APIConfig struct {
	Listen          string        `yaml:"listen"`
	AdminToken      Secret        `yaml:"admin_token"`
	TemplateMaxAge  time.Duration `yaml:"template_max_age"` // /readyz fails when older
	HistoryInterval time.Duration `yaml:"history_interval"`
	// RateLimit and RateBurst bound the public API per client IP: requests
	// per second sustained, and at once (-1 turns the limit off).
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// TrustForwardedFor counts requests from a reverse proxy on this host
	// against the X-Forwarded-For client instead.
	TrustForwardedFor bool `yaml:"trust_forwarded_for"`
}

// Defaults returns the configuration used for every key the file leaves
// out. lode.example.yaml lists the same values.
func Defaults() Config {
	return Config{
		Roles:   slices.Clone(allRoles),
		Network: "mainnet",
		Log:     LogConfig{Level: "info", Format: "json"},
		Node: NodeConfig{
			RPCAddress:      "127.0.0.1:8332",
			PollInterval:    time.Second,
			RefreshInterval: 30 * time.Second,
			Timeout:         10 * time.Second,
		},
		Redis: RedisConfig{Address: "127.0.0.1:6379", Prefix: "lode", LeaseTTL: 15 * time.Second},
		Pool:  PoolConfig{Tag: "/lode/", FeePercent: 1, PPLNSWindow: 2},
		Stratum: StratumConfig{
			Ports:            []PortConfig{{Listen: "0.0.0.0:3333", StartDifficulty: 1024, MinDifficulty: 64, MaxDifficulty: 1 << 40}},
			VersionMask:      "1fffe000",
			Extranonce2Size:  8,
			ShareInterval:    10 * time.Second,
			RetargetInterval: 90 * time.Second,
			MaxLineBytes:     16 << 10,
			AuthorizeTimeout: 15 * time.Second,
			IdleTimeout:      10 * time.Minute,
			MaxConnections:   50000,
			MaxPerIP:         1000,
			Ban:              BanConfig{Enabled: true, Window: 10 * time.Minute, MinShares: 100, RejectRatio: 0.5, Duration: time.Hour},
		},
		Ledger:   LedgerConfig{BatchSize: 256, BatchWait: 0, SpoolDir: "spool"},
		Unlocker: UnlockerConfig{Interval: time.Minute, Maturity: 100},
		Payouts: PayoutsConfig{
			Interval: time.Hour, Threshold: 1_000_000, MaxOutputs: 100, Signing: "cold",
			FeeRateFloor: 1, FeeRateCap: 200, FeePayer: "pool", UnconfirmedAlert: 24 * time.Hour,
		},
		API: APIConfig{Listen: "127.0.0.1:8080", TemplateMaxAge: 2 * time.Minute, HistoryInterval: time.Minute,
			RateLimit: 10, RateBurst: 40},
		ShutdownTimeout: 15 * time.Second,
	}
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	// The caller names the file; each line of err names a key.
	return ParseConfig(f)
}

// ParseConfig decodes YAML over Defaults (unknown keys are errors) and
// validates the result.
func ParseConfig(r io.Reader) (Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	data, err = expandEnv(data)
	if err != nil {
		return Config{}, err
	}
	cfg := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// expandEnv replaces ${NAME} with the environment variable NAME, so one file
// can serve several hosts (lode.regtest.yaml uses it for ports chosen at
// start). An unset variable is an error naming it. YAML comments are left
// alone, so a comment may mention ${NAME}. Secrets should still come
// through the env:/file: keys, which never place the value in the text.
func expandEnv(data []byte) ([]byte, error) {
	var missing []string
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(data), "\n") {
		code, comment := splitComment(line)
		for {
			i := strings.Index(code, "${")
			if i < 0 {
				break
			}
			j := strings.IndexByte(code[i:], '}')
			if j < 0 {
				break
			}
			name := code[i+2 : i+j]
			v, ok := os.LookupEnv(name)
			if !ok && !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			b.WriteString(code[:i])
			b.WriteString(v)
			code = code[i+j+1:]
		}
		b.WriteString(code)
		b.WriteString(comment)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("config uses unset environment variables: %s", strings.Join(missing, ", "))
	}
	return []byte(b.String()), nil
}

// splitComment splits a YAML line before its comment: a '#' at the start or
// after a blank, outside quotes.
func splitComment(line string) (code, comment string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i], line[i:]
		}
	}
	return line, ""
}

// paymentConfig is the payout processor's configuration from the file, with
// the hot signing key loaded (through getenv and readFile) when signing is
// hot. preflight validates it for -check-config and every start.
func (c Config) paymentConfig(getenv func(string) string, readFile func(string) ([]byte, error)) (payment.Config, error) {
	pc := payment.Config{
		Params: c.ChainParams(), PoolAddress: c.Pool.PayoutAddress, Mode: payment.Mode(c.Payouts.Signing),
		Interval: c.Payouts.Interval, Threshold: c.Payouts.Threshold, MaxOutputs: c.Payouts.MaxOutputs,
		FeeRateFloor: c.Payouts.FeeRateFloor * 1000, FeeRateCap: c.Payouts.FeeRateCap * 1000,
		FeePayer: payment.FeePayer(c.Payouts.FeePayer), StuckAfter: c.Payouts.UnconfirmedAlert,
	}
	if pc.Mode == payment.ModeHot {
		key, err := payment.LoadKey(payment.KeySource{Env: c.Payouts.Key.Env, File: c.Payouts.Key.File},
			pc.Params, getenv, readFile)
		if err != nil {
			return payment.Config{}, &ConfigError{Key: "payouts.key", Problem: err.Error()}
		}
		pc.Key = key
	}
	return pc, nil
}

// maxDifficulty bounds the difficulties of the file: the share ledger's
// largest (ledger.MaxDifficulty), and finite.
const maxDifficulty = 1e15

// ChainParams returns the btcd parameters of the configured network.
func (c Config) ChainParams() *chaincfg.Params {
	switch c.Network {
	case "mainnet":
		return &chaincfg.MainNetParams
	case "testnet3":
		return &chaincfg.TestNet3Params
	case "signet":
		return &chaincfg.SigNetParams
	case "regtest":
		return &chaincfg.RegressionNetParams
	}
	return nil
}

// Has reports whether the process runs role.
func (c Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// ConfigError names the key that is wrong and why.
type ConfigError struct {
	Key     string
	Problem string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Problem }

// Validate checks every key and returns all problems at once, each naming
// its key, so an operator fixes the file in one pass.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)})
	}
	if len(c.Roles) == 0 {
		bad("roles", "at least one of %s", strings.Join(allRoles, ", "))
	}
	seen := map[string]bool{}
	for i, r := range c.Roles {
		if !slices.Contains(allRoles, r) {
			bad(fmt.Sprintf("roles[%d]", i), "unknown role %q (want one of %s)", r, strings.Join(allRoles, ", "))
		}
		if seen[r] {
			bad(fmt.Sprintf("roles[%d]", i), "role %q listed twice", r)
		}
		seen[r] = true
	}
	params := c.ChainParams()
	if params == nil {
		bad("network", "unknown network %q (want mainnet, testnet3, signet or regtest)", c.Network)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format", "unknown format %q (want json or console)", c.Log.Format)
	}

	needNode := c.Has(RoleStratum) || c.Has(RoleUnlocker) || c.Has(RolePayouts)
	if needNode {
		checkHostPort(bad, "node.rpc_address", c.Node.RPCAddress)
		if c.Node.RPCCookieFile == "" && (c.Node.RPCUser == "" || !c.Node.RPCPassword.IsSet()) {
			bad("node", "set rpc_cookie_file, or rpc_user with rpc_password (env or file)")
		}
		if c.Node.RPCCookieFile != "" && (c.Node.RPCUser != "" || c.Node.RPCPassword.IsSet()) {
			bad("node.rpc_cookie_file", "use either the cookie file or rpc_user/rpc_password, not both")
		}
	}
	checkSecret(bad, "node.rpc_password", c.Node.RPCPassword)
	if c.Node.ZMQHashBlock != "" && !strings.HasPrefix(c.Node.ZMQHashBlock, "tcp://") {
		bad("node.zmq_hashblock", "must be a tcp:// endpoint, got %q", c.Node.ZMQHashBlock)
	}
	positive(bad, "node.poll_interval", c.Node.PollInterval)
	positive(bad, "node.refresh_interval", c.Node.RefreshInterval)
	positive(bad, "node.timeout", c.Node.Timeout)

	checkHostPort(bad, "redis.address", c.Redis.Address)
	checkSecret(bad, "redis.password", c.Redis.Password)
	if c.Redis.DB < 0 || c.Redis.DB > 15 {
		bad("redis.db", "must be 0..15, got %d", c.Redis.DB)
	}
	if c.Redis.Prefix == "" || strings.ContainsAny(c.Redis.Prefix, " {}") {
		bad("redis.prefix", "must be non-empty without spaces or braces, got %q", c.Redis.Prefix)
	}
	if c.Redis.LeaseTTL < time.Second {
		bad("redis.lease_ttl", "must be at least 1s, got %v", c.Redis.LeaseTTL)
	}

	if c.Has(RoleStratum) || c.Has(RolePayouts) {
		if c.Pool.PayoutAddress == "" {
			bad("pool.payout_address", "required: the address the coinbase pays")
		} else if params != nil {
			if err := checkAddress(c.Pool.PayoutAddress, params); err != nil {
				bad("pool.payout_address", "%v", err)
			}
		}
	}
	if len(c.Pool.Tag) > 40 {
		bad("pool.tag", "at most 40 bytes, got %d", len(c.Pool.Tag))
	}
	if c.Pool.InstanceID < 0 || c.Pool.InstanceID > 255 {
		bad("pool.instance_id", "must be 0..255, got %d", c.Pool.InstanceID)
	}
	// Comparisons are written so NaN fails them (YAML spells it .nan, and
	// infinity .inf).
	if !(c.Pool.FeePercent >= 0 && c.Pool.FeePercent < 100) {
		bad("pool.fee_percent", "must be in [0, 100), got %v", c.Pool.FeePercent)
	}
	if !(c.Pool.PPLNSWindow > 0 && c.Pool.PPLNSWindow <= 100) {
		bad("pool.pplns_window", "must be in (0, 100], got %v", c.Pool.PPLNSWindow)
	}
	if !(c.Pool.PPLNSMinWindow >= 0 && c.Pool.PPLNSMinWindow <= maxDifficulty) {
		bad("pool.pplns_min_window", "must be 0..%g, got %v", maxDifficulty, c.Pool.PPLNSMinWindow)
	}

	if c.Has(RoleStratum) && len(c.Stratum.Ports) == 0 {
		bad("stratum.ports", "at least one port is needed for the stratum role")
	}
	for i, p := range c.Stratum.Ports {
		key := fmt.Sprintf("stratum.ports[%d]", i)
		checkHostPort(bad, key+".listen", p.Listen)
		if !(p.MinDifficulty > 0) {
			bad(key+".min_difficulty", "must be > 0, got %v", p.MinDifficulty)
		}
		if !(p.MaxDifficulty >= p.MinDifficulty) {
			bad(key+".max_difficulty", "must be >= min_difficulty (%v), got %v", p.MinDifficulty, p.MaxDifficulty)
		} else if !(p.MaxDifficulty <= maxDifficulty) {
			bad(key+".max_difficulty", "must be at most %g, got %v", maxDifficulty, p.MaxDifficulty)
		}
		if !(p.StartDifficulty >= p.MinDifficulty && p.StartDifficulty <= p.MaxDifficulty) {
			bad(key+".start_difficulty", "must be within [min_difficulty, max_difficulty], got %v", p.StartDifficulty)
		}
		if (p.TLSCert == "") != (p.TLSKey == "") {
			bad(key, "tls_cert and tls_key go together")
		}
	}
	if _, err := c.VersionMask(); err != nil {
		bad("stratum.version_mask", "%v", err)
	}
	if c.Stratum.Extranonce2Size < 1 || c.Stratum.Extranonce2Size > 8 {
		bad("stratum.extranonce2_size", "must be 1..8 (some ASICs fail above 8), got %d", c.Stratum.Extranonce2Size)
	}
	positive(bad, "stratum.share_interval", c.Stratum.ShareInterval)
	positive(bad, "stratum.retarget_interval", c.Stratum.RetargetInterval)
	if c.Stratum.MaxLineBytes < 1024 {
		bad("stratum.max_line_bytes", "must be >= 1024, got %d", c.Stratum.MaxLineBytes)
	}
	positive(bad, "stratum.authorize_timeout", c.Stratum.AuthorizeTimeout)
	positive(bad, "stratum.idle_timeout", c.Stratum.IdleTimeout)
	if c.Stratum.MaxConnections < 1 {
		bad("stratum.max_connections", "must be >= 1, got %d", c.Stratum.MaxConnections)
	}
	if c.Stratum.MaxPerIP < 1 {
		bad("stratum.max_connections_per_ip", "must be >= 1, got %d", c.Stratum.MaxPerIP)
	}
	if b := c.Stratum.Ban; b.Enabled {
		positive(bad, "stratum.ban.window", b.Window)
		positive(bad, "stratum.ban.duration", b.Duration)
		if !(b.RejectRatio > 0 && b.RejectRatio <= 1) {
			bad("stratum.ban.reject_ratio", "must be in (0, 1], got %v", b.RejectRatio)
		}
		if b.MinShares < 1 {
			bad("stratum.ban.min_shares", "must be >= 1, got %d", b.MinShares)
		}
	}

	if c.Ledger.BatchSize < 1 || c.Ledger.BatchSize > 65536 {
		bad("ledger.batch_size", "must be 1..65536, got %d", c.Ledger.BatchSize)
	}
	if c.Ledger.BatchWait < 0 || c.Ledger.BatchWait > time.Second {
		bad("ledger.batch_wait", "must be 0..1s, got %v", c.Ledger.BatchWait)
	}
	if c.Has(RoleStratum) && c.Ledger.SpoolDir == "" {
		bad("ledger.spool_dir", "required: shares go there while Redis is down")
	}

	positive(bad, "unlocker.interval", c.Unlocker.Interval)
	if c.Unlocker.Maturity < 1 {
		bad("unlocker.maturity", "must be >= 1, got %d", c.Unlocker.Maturity)
	} else if c.Unlocker.Maturity < 100 && c.Network != "regtest" {
		// A block credited before coinbase maturity and then reorged away
		// stays credited: its balances would be paid from other blocks.
		bad("unlocker.maturity", "must be >= 100 (coinbase maturity) outside regtest, got %d", c.Unlocker.Maturity)
	}

	positive(bad, "payouts.interval", c.Payouts.Interval)
	if c.Payouts.Threshold < 1 {
		bad("payouts.threshold", "must be >= 1 satoshi, got %d", c.Payouts.Threshold)
	}
	if c.Payouts.MaxOutputs < 1 || c.Payouts.MaxOutputs > 2000 {
		bad("payouts.max_outputs", "must be 1..2000, got %d", c.Payouts.MaxOutputs)
	}
	switch c.Payouts.Signing {
	case "hot":
		if c.Has(RolePayouts) && !c.Payouts.Key.IsSet() {
			bad("payouts.key", "hot signing needs the key from env or file")
		}
	case "cold":
	default:
		bad("payouts.signing", "must be hot or cold, got %q", c.Payouts.Signing)
	}
	checkSecret(bad, "payouts.key", c.Payouts.Key)
	if c.Payouts.FeeRateFloor < 1 {
		bad("payouts.fee_rate_floor", "must be >= 1 sat/vB, got %d", c.Payouts.FeeRateFloor)
	}
	if c.Payouts.FeeRateCap < c.Payouts.FeeRateFloor {
		bad("payouts.fee_rate_cap", "must be >= fee_rate_floor (%d), got %d", c.Payouts.FeeRateFloor, c.Payouts.FeeRateCap)
	}
	if c.Payouts.FeePayer != "pool" && c.Payouts.FeePayer != "miners" {
		bad("payouts.fee_payer", "must be pool or miners, got %q", c.Payouts.FeePayer)
	}
	positive(bad, "payouts.unconfirmed_alert", c.Payouts.UnconfirmedAlert)

	checkHostPort(bad, "api.listen", c.API.Listen)
	checkSecret(bad, "api.admin_token", c.API.AdminToken)
	positive(bad, "api.template_max_age", c.API.TemplateMaxAge)
	positive(bad, "api.history_interval", c.API.HistoryInterval)
	if r := c.API.RateLimit; r != -1 && !(r > 0 && r <= 1e6) {
		bad("api.rate_limit", "must be requests per second > 0 (at most 1e6), or -1 for no limit, got %v", r)
	}
	if c.API.RateBurst < 1 || c.API.RateBurst > 1e6 {
		bad("api.rate_burst", "must be 1..1000000, got %d", c.API.RateBurst)
	}
	positive(bad, "shutdown_timeout", c.ShutdownTimeout)
	return errors.Join(errs...)
}

// VersionMask parses stratum.version_mask.
func (c Config) VersionMask() (uint32, error) {
	var v uint32
	s := strings.TrimPrefix(c.Stratum.VersionMask, "0x")
	if len(s) == 0 || len(s) > 8 {
		return 0, fmt.Errorf("want up to 8 hex digits, got %q", c.Stratum.VersionMask)
	}
	if _, err := fmt.Sscanf(s, "%x", &v); err != nil {
		return 0, fmt.Errorf("want hex, got %q", c.Stratum.VersionMask)
	}
	if v&^0x1fffe000 != 0 {
		return 0, fmt.Errorf("%08x has bits outside BIP320's 1fffe000", v)
	}
	return v, nil
}

func checkAddress(s string, params *chaincfg.Params) error {
	a, err := btcutil.DecodeAddress(s, params)
	if err != nil {
		return fmt.Errorf("not a %s address: %v", params.Name, err)
	}
	if !a.IsForNet(params) {
		return fmt.Errorf("address %s is not for %s", s, params.Name)
	}
	return nil
}

func checkHostPort(bad func(string, string, ...any), key, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		bad(key, "want host:port, got %q", v)
		return
	}
	_ = host
}

func checkSecret(bad func(string, string, ...any), key string, s Secret) {
	if s.Env != "" && s.File != "" {
		bad(key, "set env or file, not both")
	}
}

func positive(bad func(string, string, ...any), key string, d time.Duration) {
	if d <= 0 {
		bad(key, "must be a positive duration, got %v", d)
	}
}
