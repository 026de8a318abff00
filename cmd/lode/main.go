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
	cfg, secrets, err := loadAll(*path)
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

	applyRuntime(cfg.Runtime, getenv, log)
	d := &daemon{cfg: cfg, secrets: secrets, path: *path, log: log, hup: hup}
	d.reloaders = append(d.reloaders, reloader{name: "runtime", reload: func(c Config) error {
		applyRuntime(c.Runtime, getenv, log)
		return nil
	}})
	if err := d.run(ctx); err != nil {
		log.Error("lode stopped with an error", zap.Error(err))
		return 1
	}
	log.Info("lode stopped")
	return 0
}

// loadAll loads the file, reads the secrets it names and runs preflight,
// reporting every problem of the three in one go: an operator fixes the
// file, the environment and the key in one pass. A preflight problem of a
// key the file's own checks already refused is left out (it would only
// repeat it).
func loadAll(path string) (Config, Secrets, error) {
	cfg, fileErr := LoadConfig(path)
	if fileErr != nil && cfg.Roles == nil {
		return cfg, Secrets{}, fileErr // the file could not be read
	}
	// Secrets are read now, so -check-config also finds a missing
	// environment variable or an unreadable file.
	secrets, secretErr := cfg.ResolveSecrets()
	errs := []error{fileErr, secretErr}
	bad := map[string]bool{}
	for _, e := range leafErrors(errors.Join(fileErr, secretErr)) {
		var ce *ConfigError
		if !errors.As(e, &ce) {
			// A syntax error or an unset ${NAME}: the file was not read,
			// the checks of its defaults would only add noise.
			return cfg, secrets, errors.Join(errs...)
		}
		bad[ce.Key] = true
	}
	// What the roles would refuse at start, checked the same way for
	// -check-config and for a start.
	for _, e := range leafErrors(preflight(cfg)) {
		var ce *ConfigError
		if errors.As(e, &ce) && overlaps(ce.Key, bad) {
			continue
		}
		errs = append(errs, e)
	}
	return cfg, secrets, errors.Join(errs...)
}

// leafErrors flattens joined errors.
func leafErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// overlaps reports whether key is one of keys, or a section holding one of
// them, or a key inside one of them.
func overlaps(key string, keys map[string]bool) bool {
	for k := range keys {
		if k == key || strings.HasPrefix(k, key+".") || strings.HasPrefix(key, k+".") {
			return true
		}
	}
	return false
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
		pc, err := cfg.PaymentConfig(false, getenv, readFile)
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
