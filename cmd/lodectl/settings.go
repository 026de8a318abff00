package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/lode-pool/lode/internal/config"
	"github.com/lode-pool/lode/internal/redisstore"
)

// settings are what every lodectl command reads from lode.yaml (-config,
// or the file named by $LODE_CONFIG): the same file and the same package
// (internal/config) as the daemon, so lodectl finds Redis, the node, the
// network, the key prefix and the payout settings exactly as the daemon
// uses them. A flag given on the command line overrides the file's value.
type settings struct {
	fs         *flag.FlagSet
	configPath string
	redisAddr  string
	password   string
	prefix     string
	network    string
	timeout    time.Duration
	// overrides apply the command's own flags (node, payouts) to the
	// loaded config, in order.
	overrides []func(c *config.Config, set map[string]bool)

	cfg config.Config // after load
}

func newSettings(fs *flag.FlagSet) *settings {
	d := config.Defaults()
	s := &settings{fs: fs}
	fs.StringVar(&s.configPath, "config", os.Getenv("LODE_CONFIG"),
		"the daemon's lode.yaml: Redis, node, network, prefix and payout settings come from it (default $LODE_CONFIG; without a file, lode's defaults)")
	fs.StringVar(&s.redisAddr, "redis", d.Redis.Address, "Redis address host:port (overrides redis.address)")
	fs.StringVar(&s.password, "password", "", "Redis password (overrides redis.password; prefer the file's env/file secret)")
	fs.StringVar(&s.prefix, "prefix", d.Redis.Prefix, "key prefix of the pool (overrides redis.prefix)")
	fs.StringVar(&s.network, "network", d.Network, "network: "+config.NetworkNames()+" (overrides network)")
	fs.DurationVar(&s.timeout, "timeout", 10*time.Second, "give up after this long")
	return s
}

// load reads the config file (when one is named) and applies the flags
// given on the command line over it.
func (s *settings) load() error {
	cfg := config.Defaults()
	if s.configPath != "" {
		var err error
		cfg, err = config.Load(s.configPath)
		if err != nil {
			return fmt.Errorf("config %s:\n  %s", s.configPath, indentLines(err.Error()))
		}
	}
	set := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["redis"] {
		cfg.Redis.Address = s.redisAddr
	}
	if set["prefix"] {
		cfg.Redis.Prefix = s.prefix
	}
	if set["network"] {
		if _, err := config.Network(s.network); err != nil {
			return fmt.Errorf("-network: %w", err)
		}
		cfg.Network = s.network
	}
	for _, o := range s.overrides {
		o(&cfg, set)
	}
	s.cfg = cfg
	return nil
}

// source names where a setting came from, for error messages.
func (s *settings) source(key string) string {
	if s.configPath == "" {
		return "default; set -config lode.yaml or -" + key
	}
	return "from " + s.configPath
}

// open connects to Redis; the caller closes the store's client. Redis is
// dialled once first, so an unreachable server gives one clear message
// (the client would retry and log each attempt).
func (s *settings) open(ctx context.Context) (*redisstore.Store, error) {
	addr := s.cfg.Redis.Address
	if mode := s.cfg.Redis.Mode; mode == redisstore.ModeCluster || mode == redisstore.ModeSentinel {
		if len(s.cfg.Redis.Addrs) == 0 {
			return nil, fmt.Errorf("redis.addrs: required with mode %s (%s)", mode, s.source("redis"))
		}
		addr = s.cfg.Redis.Addrs[0] // a seed node or a Sentinel: the same one clear message if it is down
	}
	d := net.Dialer{Timeout: min(s.timeout, 5*time.Second)}
	network, dialAddr := "tcp", addr
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		network, dialAddr = "unix", path // a local Redis's socket
	}
	conn, err := d.DialContext(ctx, network, dialAddr)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Redis at %s (redis.address, %s): %w", addr, s.source("redis"), unwrapNetError(err))
	}
	conn.Close()
	password := s.password
	if password == "" {
		if password, err = s.cfg.Redis.Password.Resolve(); err != nil {
			return nil, fmt.Errorf("redis.password: %w", err)
		}
	}
	sentinelPassword, err := s.cfg.Redis.SentinelPassword.Resolve()
	if err != nil {
		return nil, fmt.Errorf("redis.sentinel_password: %w", err)
	}
	st, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: addr, Password: password, DB: s.cfg.Redis.DB,
		Prefix: s.cfg.Redis.Prefix, Mode: s.cfg.Redis.Mode, Addrs: s.cfg.Redis.Addrs,
		MasterName: s.cfg.Redis.SentinelMaster, SentinelPassword: sentinelPassword})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// unwrapNetError drops the "dial tcp 127.0.0.1:6379:" the message already
// says.
func unwrapNetError(err error) error {
	var op *net.OpError
	if e, ok := err.(*net.OpError); ok && e.Err != nil {
		op = e
		return op.Err
	}
	return err
}

func indentLines(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, ' ', ' ')
		}
	}
	return string(out)
}
