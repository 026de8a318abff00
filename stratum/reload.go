package stratum

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// tunables are the settings Reload may change while sessions run. They are
// replaced as a whole and read through Server.t, so no session sees half a
// reload.
type tunables struct {
	ports             []Port // difficulty bounds by port index; addresses and TLS are fixed
	authorizeTimeout  time.Duration
	idleTimeout       time.Duration
	maxConnections    int
	maxPerIP          int
	maxProtocolErrors int
	vardiff           Vardiff
	ban               Ban
}

func tunablesOf(c Config) *tunables {
	return &tunables{
		ports:             append([]Port(nil), c.Ports...),
		authorizeTimeout:  c.AuthorizeTimeout,
		idleTimeout:       c.IdleTimeout,
		maxConnections:    c.MaxConnections,
		maxPerIP:          c.MaxConnectionsPerIP,
		maxProtocolErrors: c.MaxProtocolErrors,
		vardiff:           c.Vardiff,
		ban:               c.Ban,
	}
}

func (s *Server) t() *tunables { return s.settings.Load() }

// Reload applies the reloadable part of cfg: each port's start/min/max
// difficulty, the authorize and idle timeouts, connection limits, the
// malformed-message allowance, vardiff and ban settings. Ports must keep
// their addresses and TLS files (a restart changes those); the wired
// components (Jobs, Validator, …) and the rest of cfg are ignored. Live
// sessions keep their difficulty until vardiff or a suggestion moves it,
// within the new bounds.
func (s *Server) Reload(cfg Config) error {
	cfg.Jobs, cfg.Validator, cfg.Recorder = s.cfg.Jobs, s.cfg.Validator, s.cfg.Recorder
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("stratum reload: %w", err)
	}
	cfg = cfg.withDefaults()
	if len(cfg.Ports) != len(s.cfg.Ports) {
		return fmt.Errorf("stratum reload: %d ports configured, %d running: ports change only on restart", len(cfg.Ports), len(s.cfg.Ports))
	}
	for i, p := range cfg.Ports {
		old := s.cfg.Ports[i]
		if p.Address != old.Address || p.TLSCertFile != old.TLSCertFile || p.TLSKeyFile != old.TLSKeyFile {
			return fmt.Errorf("stratum reload: port %s: address and TLS files change only on restart", old.Address)
		}
	}
	s.settings.Store(tunablesOf(cfg))
	return nil
}

// Ban bans an IP address or a worker name (as authorized, "address" or
// "address.worker") for d (the configured ban duration when d <= 0) and
// closes its live connections. With a BanStore (UseBanStore) the ban is
// also written there, so every frontend applies it within its refresh; an
// error then means the ban holds here but was not shared.
func (s *Server) Ban(ctx context.Context, target string, d time.Duration) error {
	if target == "" {
		return errors.New("stratum ban: empty target")
	}
	if d <= 0 {
		d = s.t().ban.Duration
	}
	key, isIP := banKey(target)
	until := time.Now().Add(d)
	s.mu.Lock()
	s.bans[key] = until
	var victims []*Session
	for sess := range s.sessions {
		if isIP && sess.ip == key[len("ip:"):] {
			victims = append(victims, sess)
		}
	}
	s.mu.Unlock()
	if !isIP {
		for _, sess := range s.snapshot() {
			if sess.hasWorker(target) {
				victims = append(victims, sess)
			}
		}
	}
	for _, sess := range victims {
		sess.close(CloseBanned)
	}
	return s.storeBan(ctx, key, until)
}

// Unban lifts a ban on an IP address or worker name (with a BanStore, at
// every frontend).
func (s *Server) Unban(ctx context.Context, target string) error {
	key, _ := banKey(target)
	s.mu.Lock()
	delete(s.bans, key)
	delete(s.banStored, key)
	delete(s.sharedBans, key)
	store := s.banStore
	s.mu.Unlock()
	if store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, banStoreTimeout)
	defer cancel()
	if err := store.RemoveBan(ctx, key); err != nil {
		return fmt.Errorf("stratum: lift shared ban %s: %w", key, err)
	}
	return nil
}

func banKey(target string) (string, bool) {
	if ip := net.ParseIP(target); ip != nil {
		return "ip:" + ip.String(), true
	}
	return "worker:" + target, false
}
