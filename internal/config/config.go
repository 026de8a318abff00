// Package config is lode.yaml: the one file both the daemon (lode) and the
// operator's tool (lodectl) read, so lodectl finds Redis, the node, the
// network and the payout settings exactly as the daemon uses them.
//
// Each top-level key is one section. The sections of this package are
// checked by Validate with their key paths. A section whose type is another
// package's own Config (stratum, ledger, unlocker, economics, alerts) is decoded straight
// into it and checked by its ValidateSettings() error method (the settings
// without the components the daemon wires in) or else its Validate() error;
// errors with ConfigKey/ConfigProblem methods are reported under their key
// path. Adding a package's section is one field here; adding a setting to
// it is a field with a yaml key in the package, its default and its check
// there, and a line in lode.example.yaml. Fields tagged yaml:",inline" are
// written flat in the section. Defaults come from the packages' own
// constants.
//
// Loading reports every problem of a file in one go: unknown keys (with a
// "did you mean" for near misses), values of the wrong kind, and the
// checks of Validate, each naming its key path.
package config

import (
	"slices"
	"time"

	"github.com/lode-pool/lode/alerts"
	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/economics"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/secret"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/shares/ledger"
	"github.com/lode-pool/lode/stratum"
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

// AllRoles lists the roles in the order a process starts them.
var AllRoles = []string{RoleStratum, RoleAPI, RoleUnlocker, RolePayouts}

// Config is the whole lode.yaml. Every field has a default (see Defaults and
// lode.example.yaml) except pool.payout_address and the node's credentials.
type Config struct {
	// Roles this process runs (default: all four).
	Roles   []string    `yaml:"roles"`
	Network string      `yaml:"network"` // mainnet, testnet3, signet, regtest
	Log     LogConfig   `yaml:"log"`
	Node    NodeConfig  `yaml:"node"`
	Redis   RedisConfig `yaml:"redis"`
	Pool    PoolConfig  `yaml:"pool"`
	// Stratum is package stratum's own Config, checked by its
	// ValidateSettings; the daemon adds the network, pool.instance_id and
	// the components it wires.
	Stratum stratum.Config `yaml:"stratum"`
	// Ledger is package ledger's own Config (ValidateSettings); the
	// daemon adds the PPLNS window from pool.
	Ledger ledger.Config `yaml:"ledger"`
	// Unlocker is package payouts' UnlockerConfig (ValidateSettings).
	Unlocker payouts.UnlockerConfig `yaml:"unlocker"`
	Payouts  PayoutsConfig          `yaml:"payouts"`
	API      APIConfig              `yaml:"api"`
	// Economics is package economics' section (issue 13), checked by its
	// Validate; off unless economics.enabled.
	Economics economics.Config `yaml:"economics"`
	// Alerts is package alerts' section (issue 15), checked by its
	// Validate; off unless alerts.enabled.
	Alerts alerts.Config `yaml:"alerts"`
	// Runtime tunes the Go garbage collector of this process.
	Runtime RuntimeConfig `yaml:"runtime"`
	// ShutdownTimeout bounds the graceful shutdown after SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DefaultGCPercent is runtime.gc_percent's default. A stratum frontend's
// heap is mostly long-lived per-connection state and the share path
// allocates little, so the Go default (100: the heap may grow to twice the
// live heap before a collection) spends memory, about 2 KiB per connection,
// on garbage that hardly accrues. At 25 the heap stays within 1.25× the live
// heap for a few more collections a second (bench/README.md, "Memory per
// connection and the collector", issue 11).
const DefaultGCPercent = 25

// RuntimeConfig is lode.yaml's runtime section. The environment variables
// GOGC, GOMEMLIMIT and GOMAXPROCS, when set, win over it: they are the Go
// runtime's own way to be tuned, and an operator who sets them means it.
type RuntimeConfig struct {
	// GCPercent is the collector's target, as GOGC: a collection starts
	// when the heap has grown this many percent over the live heap.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimitBytes is a soft limit on the process's memory, as
	// GOMEMLIMIT (0: none): near it the collector runs more often, whatever
	// gc_percent says.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`
	// MaxProcs is GOMAXPROCS: how many threads run Go code at once (0: the
	// runtime's default, the CPUs the process may use). 1 suits a frontend
	// with paced miners: the goroutines a share passes through then hand
	// over on one thread instead of waking another (bench/README.md, issue
	// 11, "Fifth round").
	MaxProcs int `yaml:"max_procs"`
}

// LogConfig selects zap's output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (production) or console (development)
}

// Secret is a value read from an environment variable or a file, never
// written in the config itself: {env: NAME} or {file: /path}. The
// packages' sections hold the same type (secret.Value); ResolveSecrets
// reads them.
type Secret = secret.Value

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
	// Mode is the topology: single (Address), cluster (Addrs are seed
	// nodes) or sentinel (Addrs are the Sentinels, SentinelMaster the
	// primary's name). docs/redis.md, "Topologies".
	Mode             string   `yaml:"mode"`
	Addrs            []string `yaml:"addrs"`
	SentinelMaster   string   `yaml:"sentinel_master"`
	SentinelPassword Secret   `yaml:"sentinel_password"`
	// MinReplicasAcked > 0: a share is acknowledged only once that many
	// replicas of the accounting master have its batch (WAIT); fewer within
	// ReplicaAckTimeout sends the batch to the spool instead.
	MinReplicasAcked  int           `yaml:"min_replicas_acked"`
	ReplicaAckTimeout time.Duration `yaml:"replica_ack_timeout"`
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

// DefaultStatsInterval is the daemon's ledger.stats_interval
// (ledger.DefaultFileStatsInterval: statistics written once a second).
const DefaultStatsInterval = ledger.DefaultFileStatsInterval

// PayoutsConfig pays balances on chain.
type PayoutsConfig struct {
	Interval   time.Duration `yaml:"interval"`
	Threshold  int64         `yaml:"threshold"` // satoshis
	MaxOutputs int           `yaml:"max_outputs"`
	Signing    string        `yaml:"signing"` // hot or cold
	// PSBTDir, with cold signing, is where the payouts role writes each new
	// payout's PSBT (payout-<id>.psbt) for the offline signer; empty: the
	// PSBTs stay in the payout records (lodectl payouts show -psbt-out).
	PSBTDir          string        `yaml:"psbt_dir"`
	Key              Secret        `yaml:"key"`            // WIF, hot signing only
	FeeRateFloor     int64         `yaml:"fee_rate_floor"` // sat/vB
	FeeRateCap       int64         `yaml:"fee_rate_cap"`   // sat/vB
	ConfTarget       int           `yaml:"conf_target"`    // fee estimate target, blocks
	FeePayer         string        `yaml:"fee_payer"`      // pool or miners
	UnconfirmedAlert time.Duration `yaml:"unconfirmed_alert"`
	// WindowArchiveBlocks and WindowArchiveDays keep each found block's
	// PPLNS window archive (docs/verify.md) until the block is outside the
	// most recent WindowArchiveBlocks blocks and older than
	// WindowArchiveDays days (both).
	WindowArchiveBlocks int `yaml:"window_archive_blocks"`
	WindowArchiveDays   int `yaml:"window_archive_days"`
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
	// Explorer is the block explorer the dashboard links transactions,
	// blocks and addresses to: "auto" (mempool.space for mainnet, testnet3
	// and signet; none on regtest), "off", or a base URL serving
	// /tx/<txid>, /block/<hash> and /address/<address> (mempool.space and
	// blockstream.info both do).
	Explorer string `yaml:"explorer"`
	// WorkerOfflineAfter shows a worker as offline when its last share is
	// older.
	WorkerOfflineAfter time.Duration `yaml:"worker_offline_after"`
}

// Defaults returns the configuration used for every key the file leaves
// out. lode.example.yaml lists the same values. Where a package has its own
// default the value comes from its constant, so the daemon, lodectl and the
// package agree. One deliberate exception: payouts.signing defaults to cold
// (payouts wait as PSBTs), because hot signing needs a key the operator
// must provide.
func Defaults() Config {
	return Config{
		Roles:   slices.Clone(AllRoles),
		Network: "mainnet",
		Log:     LogConfig{Level: "info", Format: "json"},
		Node: NodeConfig{
			RPCAddress:      "127.0.0.1:8332",
			PollInterval:    blocktemplate.DefaultPollInterval,
			RefreshInterval: blocktemplate.DefaultRefreshInterval,
			Timeout:         10 * time.Second,
		},
		Redis:    RedisConfig{Address: "127.0.0.1:6379", Prefix: redisstore.DefaultPrefix, LeaseTTL: 15 * time.Second, Mode: redisstore.ModeSingle, ReplicaAckTimeout: redisstore.DefaultReplicaAckTimeout},
		Pool:     PoolConfig{Tag: "/lode/", FeePercent: 1, PPLNSWindow: ledger.DefaultWindowFactor},
		Stratum:  stratum.DefaultConfig(),
		Ledger:   ledger.DefaultConfig(),
		Unlocker: payouts.DefaultUnlockerConfig(),
		Payouts: PayoutsConfig{
			Interval: payment.DefaultInterval, Threshold: payment.DefaultThreshold, MaxOutputs: payment.DefaultMaxOutputs,
			Signing: string(payment.ModeCold), FeeRateFloor: payment.DefaultFeeRateFloor / 1000,
			FeeRateCap: payment.DefaultFeeRateCap / 1000, ConfTarget: payment.DefaultConfTarget,
			FeePayer: string(payment.FeePayerPool), UnconfirmedAlert: payment.DefaultStuckAfter,
			WindowArchiveBlocks: payouts.DefaultArchiveBlocks, WindowArchiveDays: int(payouts.DefaultArchiveFor / (24 * time.Hour)),
		},
		API: APIConfig{Listen: "127.0.0.1:8080", TemplateMaxAge: 2 * time.Minute, HistoryInterval: time.Minute,
			RateLimit: 10, RateBurst: 40, Explorer: "auto",
			WorkerOfflineAfter: api.DefaultWorkerOfflineAfter},
		Economics:       economics.DefaultConfig(),
		Alerts:          alerts.DefaultConfig(),
		Runtime:         RuntimeConfig{GCPercent: DefaultGCPercent},
		ShutdownTimeout: 15 * time.Second,
	}
}

// Has reports whether the process runs role.
func (c Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// NodeURL is the node's RPC URL (https when node.tls is set).
func (c Config) NodeURL() string {
	scheme := "http"
	if c.Node.TLS {
		scheme = "https"
	}
	return scheme + "://" + c.Node.RPCAddress
}

// VersionMask is stratum.version_mask (stratum.ParseVersionMask), the
// default mask when the file leaves it empty.
func (c Config) VersionMask() (uint32, error) {
	if c.Stratum.VersionMaskHex == "" {
		return stratum.DefaultVersionMask, nil
	}
	return stratum.ParseVersionMask(c.Stratum.VersionMaskHex)
}
