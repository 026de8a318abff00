package config

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts"
)

// maxDifficulty bounds the difficulties of the file: the share ledger's
// largest (ledger.MaxDifficulty), and finite.
const maxDifficulty = 1e15

// Error names the key that is wrong and why.
type Error struct {
	Key     string
	Problem string
}

func (e *Error) Error() string { return e.Key + ": " + e.Problem }

// Validate checks every key and returns all problems at once, each naming
// its key, so an operator fixes the file in one pass.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Problem: fmt.Sprintf(format, args...)})
	}
	if len(c.Roles) == 0 {
		bad("roles", "at least one of %s", strings.Join(AllRoles, ", "))
	}
	seen := map[string]bool{}
	for i, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			bad(fmt.Sprintf("roles[%d]", i), "unknown role %q (want one of %s)", r, strings.Join(AllRoles, ", "))
		}
		if seen[r] {
			bad(fmt.Sprintf("roles[%d]", i), "role %q listed twice", r)
		}
		seen[r] = true
	}
	params, err := Network(c.Network)
	if err != nil {
		bad("network", "%v", err)
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
		checkHostPort(bad, "node.rpc_address", c.Node.RPCAddress, false)
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

	switch c.Redis.Mode {
	case redisstore.ModeSingle:
		if path, ok := strings.CutPrefix(c.Redis.Address, redisstore.UnixScheme); ok {
			if !strings.HasPrefix(path, "/") {
				bad("redis.address", "want %s/absolute/path/to/redis.sock, got %q", redisstore.UnixScheme, c.Redis.Address)
			}
		} else {
			checkHostPort(bad, "redis.address", c.Redis.Address, false)
		}
	case redisstore.ModeCluster, redisstore.ModeSentinel:
		if len(c.Redis.Addrs) == 0 {
			bad("redis.addrs", "required with mode %s: the %s", c.Redis.Mode,
				map[string]string{redisstore.ModeCluster: "cluster's seed nodes", redisstore.ModeSentinel: "Sentinels"}[c.Redis.Mode])
		}
		for i, a := range c.Redis.Addrs {
			checkHostPort(bad, fmt.Sprintf("redis.addrs[%d]", i), a, false)
		}
		if c.Redis.Mode == redisstore.ModeSentinel && c.Redis.SentinelMaster == "" {
			bad("redis.sentinel_master", "required with mode sentinel: the primary's name at the Sentinels")
		}
		if c.Redis.Mode == redisstore.ModeCluster && c.Redis.DB != 0 {
			bad("redis.db", "must be 0 with mode cluster (a cluster has database 0 only), got %d", c.Redis.DB)
		}
	default:
		bad("redis.mode", "want one of %s, got %q", strings.Join(redisstore.Modes, ", "), c.Redis.Mode)
	}
	checkSecret(bad, "redis.sentinel_password", c.Redis.SentinelPassword)
	if c.Redis.MinReplicasAcked < 0 {
		bad("redis.min_replicas_acked", "must be 0 (no wait) or more, got %d", c.Redis.MinReplicasAcked)
	}
	if c.Redis.ReplicaAckTimeout <= 0 || c.Redis.ReplicaAckTimeout >= c.Ledger.WriteTimeout {
		bad("redis.replica_ack_timeout", "must be above 0 and below the ledger's write timeout (ledger.write_timeout, %v), got %v",
			c.Ledger.WriteTimeout, c.Redis.ReplicaAckTimeout)
	}
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
	} else if params := c.ChainParams(); c.Has(RoleStratum) && params != nil && c.Pool.PPLNSWindow > 0 {
		// A window of 0 units is never "the whole history": at the
		// network's lowest difficulty N must be at least one unit.
		if err := payouts.ValidateWindow(c.Pool.PPLNSWindow, c.Pool.PPLNSMinWindow, params); err != nil {
			bad("pool.pplns_min_window", "%v", err)
		}
	}

	if c.Has(RoleStratum) && len(c.Stratum.Ports) == 0 {
		bad("stratum.ports", "at least one port is needed for the stratum role")
	}

	if c.Has(RoleStratum) && c.Ledger.SpoolDir == "" {
		bad("ledger.spool_dir", "required: shares go there while Redis is down")
	}

	if c.Unlocker.Maturity >= 1 && c.Unlocker.Maturity < 100 && c.Network != "regtest" {
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
	if c.Payouts.PSBTDir != "" && c.Payouts.Signing != "cold" {
		bad("payouts.psbt_dir", "is for signing: cold (hot signing writes no PSBTs)")
	}
	checkSecret(bad, "payouts.key", c.Payouts.Key)
	if c.Payouts.FeeRateFloor < 1 {
		bad("payouts.fee_rate_floor", "must be >= 1 sat/vB, got %d", c.Payouts.FeeRateFloor)
	}
	if c.Payouts.FeeRateCap < c.Payouts.FeeRateFloor {
		bad("payouts.fee_rate_cap", "must be >= fee_rate_floor (%d), got %d", c.Payouts.FeeRateFloor, c.Payouts.FeeRateCap)
	}
	if c.Payouts.ConfTarget < 1 || c.Payouts.ConfTarget > 1008 {
		bad("payouts.conf_target", "must be 1..1008 blocks, got %d", c.Payouts.ConfTarget)
	}
	if c.Payouts.FeePayer != "pool" && c.Payouts.FeePayer != "miners" {
		bad("payouts.fee_payer", "must be pool or miners, got %q", c.Payouts.FeePayer)
	}
	positive(bad, "payouts.unconfirmed_alert", c.Payouts.UnconfirmedAlert)
	if c.Payouts.WindowArchiveBlocks < 1 {
		bad("payouts.window_archive_blocks", "must be at least 1, got %d", c.Payouts.WindowArchiveBlocks)
	}
	if c.Payouts.WindowArchiveDays < 1 {
		bad("payouts.window_archive_days", "must be at least 1, got %d", c.Payouts.WindowArchiveDays)
	}

	checkHostPort(bad, "api.listen", c.API.Listen, true)
	switch e := c.API.Explorer; {
	case e == "auto" || e == "off" || e == "":
	case strings.HasPrefix(e, "https://") || strings.HasPrefix(e, "http://"):
		if strings.ContainsAny(e, " \"'<>") {
			bad("api.explorer", "not a URL: %q", e)
		}
	default:
		bad("api.explorer", "want auto, off or an http(s):// base URL, got %q", e)
	}
	checkSecret(bad, "api.admin_token", c.API.AdminToken)
	positive(bad, "api.template_max_age", c.API.TemplateMaxAge)
	positive(bad, "api.history_interval", c.API.HistoryInterval)
	positive(bad, "api.worker_offline_after", c.API.WorkerOfflineAfter)
	if r := c.API.RateLimit; r != -1 && !(r > 0 && r <= 1e6) {
		bad("api.rate_limit", "must be requests per second > 0 (at most 1e6), or -1 for no limit, got %v", r)
	}
	if c.API.RateBurst < 1 || c.API.RateBurst > 1e6 {
		bad("api.rate_burst", "must be 1..1000000, got %d", c.API.RateBurst)
	}
	if g := c.Runtime.GCPercent; g < 10 || g > 1000 {
		bad("runtime.gc_percent", "must be 10..1000 (percent the heap may grow over the live heap before a collection), got %d", g)
	}
	if p := c.Runtime.MaxProcs; p < 0 || p > 1024 {
		bad("runtime.max_procs", "must be 0 (every CPU the process may use) or 1..1024, got %d", p)
	}
	if m := c.Runtime.MemoryLimitBytes; m != 0 && m < 64<<20 {
		bad("runtime.memory_limit_bytes", "must be 0 (no limit) or at least 64 MiB (67108864), got %d", m)
	}
	positive(bad, "shutdown_timeout", c.ShutdownTimeout)
	errs = append(errs, c.validateSections()...)
	return errors.Join(errs...)
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

// checkHostPort checks host:port with a numeric port: 1..65535, or also 0
// (any free port) for a listen address.
func checkHostPort(bad func(string, string, ...any), key, v string, listen bool) {
	_, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		bad(key, "want host:port, got %q", v)
		return
	}
	low := 1
	if listen {
		low = 0
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < low || n > 65535 {
		bad(key, "port must be a number from %d to 65535, got %q", low, port)
	}
}

// A section owned by another package checks itself: with ValidateSettings
// (the file's settings alone, when its Validate also wants the components
// the daemon wires in) or else with Validate.
type (
	settingsValidator interface{ ValidateSettings() error }
	sectionValidator  interface{ Validate() error }
)

// keyedError is a package's configuration error that names its key within
// the section ("ports[0].listen" in stratum:).
type keyedError interface {
	error
	ConfigKey() string
	ConfigProblem() string
}

// validateSections runs the checks of every top-level section that has
// them (the sections of other packages).
func (c Config) validateSections() []error { return validateSectionsOf(c) }

// validateSectionsOf returns each problem of the sections as an *Error
// with its full key path: a keyedError's key under the section's; another
// error that starts with "<section>.<key>: " split there; any other error
// under the section's key.
func validateSectionsOf(cfg any) []error {
	var errs []error
	if c, ok := cfg.(Config); ok {
		for _, sf := range c.sectionSecrets() {
			if err := sf.v.Check(); err != nil {
				errs = append(errs, &Error{Key: sf.key, Problem: err.Error()})
			}
		}
	}
	v := reflect.ValueOf(cfg)
	t := v.Type()
	for i := range t.NumField() {
		key := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if key == "" || key == "-" {
			continue
		}
		var err error
		switch sv := v.Field(i).Interface().(type) {
		case settingsValidator:
			err = sv.ValidateSettings()
		case sectionValidator:
			err = sv.Validate()
		default:
			continue
		}
		for _, e := range leaves(err) {
			var ke keyedError
			switch msg := e.Error(); {
			case errors.As(e, &ke):
				k := key
				if ke.ConfigKey() != "" {
					k += "." + ke.ConfigKey()
				}
				errs = append(errs, &Error{Key: k, Problem: ke.ConfigProblem()})
			case strings.HasPrefix(msg, key+".") || strings.HasPrefix(msg, key+":"):
				k, problem, _ := strings.Cut(msg, ": ")
				errs = append(errs, &Error{Key: k, Problem: problem})
			default:
				errs = append(errs, &Error{Key: key, Problem: msg})
			}
		}
	}
	return errs
}

// leaves flattens joined errors.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
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
