// Command lode is the pool daemon: it reads one YAML config file and runs
// the roles it names (stratum, api, unlocker, payouts) in one process, with
// zap logging, graceful shutdown on SIGINT/SIGTERM and a reload of what can
// be reloaded on SIGHUP.
//
//	lode -config lode.yaml          run
//	lode -config lode.yaml -check-config   validate the file (and secrets) and exit
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocktemplate"
)

func main() {
	// SIGINT/SIGTERM cancel the root context: every component then shuts
	// down gracefully within shutdown_timeout.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := run(ctx, args(), hup, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func args() []string { return os.Args[1:] }

// run is main without the process and its signals, for tests: ctx ends the
// daemon, a value on hup reloads the config.
func run(ctx context.Context, args []string, hup <-chan os.Signal, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "lode.yaml", "path of the YAML config file")
	check := fs.Bool("check-config", false, "validate the config file and the secrets it names, then exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lode: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	cfg, err := LoadConfig(*path)
	var secrets Secrets
	if err == nil {
		// Secrets are read now, so -check-config also finds a missing
		// environment variable or an unreadable file.
		secrets, err = cfg.ResolveSecrets()
	}
	if err == nil {
		// What the roles would refuse at start, checked the same way for
		// -check-config and for a start.
		err = preflight(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "lode: invalid config %s:\n%s\n", *path, indent(err))
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: OK (network %s, roles %s)\n", *path, cfg.Network, strings.Join(cfg.Roles, ", "))
		return 0
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "lode: logger: %v\n", err)
		return 1
	}
	defer func() { _ = log.Sync() }()

	d := &daemon{cfg: cfg, secrets: secrets, path: *path, log: log, hup: hup}
	if err := d.run(ctx); err != nil {
		log.Error("lode stopped with an error", zap.Error(err))
		return 1
	}
	log.Info("lode stopped")
	return 0
}

// preflight checks what the roles check when they start, beyond the file's
// own validation: the payout key's value (a WIF, for the network, of
// pool.payout_address), the payout processor's, coinbase builder's and
// API's configurations built from the file. lode -check-config and a start
// both run it, so a file that passes the check does not stop the daemon at
// start for any of these. It reads the key but keeps nothing.
func preflight(cfg Config) error {
	var errs []error
	if cfg.Has(RolePayouts) {
		pc, err := cfg.paymentConfig(getenv, readFile)
		if err != nil {
			errs = append(errs, err) // names payouts.key
		} else if err := pc.Validate(); err != nil {
			errs = append(errs, &ConfigError{Key: "payouts", Problem: err.Error()})
		}
	}
	if cfg.Has(RoleStratum) || cfg.Has(RoleUnlocker) {
		mask, _ := cfg.VersionMask() // checked by Validate
		if _, err := blocktemplate.NewBuilder(blocktemplate.Config{
			Network: cfg.ChainParams(), PayoutAddress: cfg.Pool.PayoutAddress, PoolTag: cfg.Pool.Tag,
			Extranonce2Size: cfg.Stratum.Extranonce2Size, VersionMask: mask,
		}); err != nil {
			errs = append(errs, &ConfigError{Key: "pool", Problem: "coinbase builder: " + err.Error()})
		}
	}
	if cfg.Has(RoleAPI) {
		if _, err := api.New(api.Config{Listen: cfg.API.Listen, RateLimit: cfg.API.RateLimit, RateBurst: cfg.API.RateBurst}); err != nil {
			errs = append(errs, &ConfigError{Key: "api", Problem: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// indent puts each line of a joined error on its own indented line.
func indent(err error) string {
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}

// Secrets are the values resolved from the env vars and files the config
// names. They are passed to the components and never logged.
type Secrets struct {
	NodeUser, NodePassword string
	RedisPassword          string
	PayoutKey              string
	AdminToken             string
}

// ResolveSecrets reads every secret the config names, and the cookie file.
func (c Config) ResolveSecrets() (Secrets, error) {
	var s Secrets
	var errs []error
	get := func(key string, sec Secret, dst *string) {
		v, err := sec.Resolve()
		if err != nil {
			errs = append(errs, &ConfigError{Key: key, Problem: err.Error()})
		}
		*dst = v
	}
	get("node.rpc_password", c.Node.RPCPassword, &s.NodePassword)
	s.NodeUser = c.Node.RPCUser
	get("redis.password", c.Redis.Password, &s.RedisPassword)
	if c.Has(RolePayouts) && c.Payouts.Signing == "hot" {
		get("payouts.key", c.Payouts.Key, &s.PayoutKey)
	}
	get("api.admin_token", c.API.AdminToken, &s.AdminToken)
	if c.Node.RPCCookieFile != "" && (c.Has(RoleStratum) || c.Has(RoleUnlocker) || c.Has(RolePayouts)) {
		b, err := os.ReadFile(c.Node.RPCCookieFile)
		if err != nil {
			errs = append(errs, &ConfigError{Key: "node.rpc_cookie_file", Problem: err.Error()})
		} else if user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":"); !ok || user == "" || pass == "" {
			errs = append(errs, &ConfigError{Key: "node.rpc_cookie_file", Problem: "want user:password"})
		} else {
			s.NodeUser, s.NodePassword = user, pass
		}
	}
	return s, errors.Join(errs...)
}

// newLogger builds the root logger: JSON for production, colourless console
// for development, both to w.
func newLogger(c LogConfig, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	var enc zapcore.Encoder
	if c.Format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}
