package stratum

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// BanStore shares bans between the stratum frontends of one pool (the
// daemon passes Redis: internal/redisstore). Keys are the server's ban keys:
// "ip:<address>" or "worker:<name>". The share path never calls it: bans are
// read from the local copy, which a background loop refreshes.
type BanStore interface {
	// AddBan bans key until the given time (replacing an earlier ban).
	AddBan(ctx context.Context, key string, until time.Time) error
	// RemoveBan lifts a ban on key.
	RemoveBan(ctx context.Context, key string) error
	// Bans returns every ban in force: key → until.
	Bans(ctx context.Context) (map[string]time.Time, error)
}

// DefaultBanRefresh is how often a frontend reads the shared bans: a ban made
// at one frontend applies at every other one within about this long.
const DefaultBanRefresh = 2 * time.Second

// banStoreTimeout bounds one BanStore call.
const banStoreTimeout = 2 * time.Second

// UseBanStore shares this server's bans through store: every ban (admin or
// reject ratio) is also written there, an unban removed there, and every
// refresh (DefaultBanRefresh when <= 0) the server reads the store's bans,
// refuses their IPs and workers from then on and closes their live
// connections. Call it once, before Run. With no store the bans stay local to
// the process, as before.
func (s *Server) UseBanStore(store BanStore, refresh time.Duration) {
	if refresh <= 0 {
		refresh = DefaultBanRefresh
	}
	s.mu.Lock()
	s.banStore = store
	s.mu.Unlock()
	go s.syncBans(store, refresh)
}

// syncBans refreshes the shared bans until shutdown starts.
func (s *Server) syncBans(store BanStore, refresh time.Duration) {
	t := time.NewTicker(refresh)
	defer t.Stop()
	failures := 0
	for {
		if err := s.refreshBans(store); err != nil {
			failures++
			if failures == 1 || failures%100 == 0 {
				s.log.Warn("read shared bans; keeping the last ones read", zap.Int("attempts", failures), zap.Error(err))
			}
		} else {
			failures = 0
		}
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
	}
}

// refreshBans replaces the shared bans with the store's and closes the live
// connections of bans new to this server. A local ban the store confirmed
// before this read started and no longer holds was lifted at another
// frontend: it is dropped here too.
func (s *Server) refreshBans(store BanStore) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), banStoreTimeout)
	remote, err := store.Bans(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("stratum: read shared bans: %w", err)
	}
	s.mu.Lock()
	var fresh []string
	for k, until := range remote {
		if _, ok := s.sharedBans[k]; !ok && start.Before(until) {
			if _, local := s.bans[k]; !local {
				fresh = append(fresh, k)
			}
		}
	}
	for k, at := range s.banStored {
		if _, ok := remote[k]; !ok && at.Before(start) {
			delete(s.bans, k)
			delete(s.banStored, k)
		}
	}
	s.sharedBans = remote
	s.mu.Unlock()
	for _, k := range fresh {
		s.closeBanned(k)
	}
	return nil
}

// closeBanned closes the live connections key bans.
func (s *Server) closeBanned(key string) {
	var victims []*Session
	if ip, isIP := cutPrefix(key, "ip:"); isIP {
		s.mu.Lock()
		for sess := range s.sessions {
			if sess.ip == ip {
				victims = append(victims, sess)
			}
		}
		s.mu.Unlock()
	} else if name, ok := cutPrefix(key, "worker:"); ok {
		for _, sess := range s.snapshot() {
			if sess.hasWorker(name) {
				victims = append(victims, sess)
			}
		}
	}
	for _, sess := range victims {
		sess.close(CloseBanned)
	}
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

// storeBan writes a ban to the shared store (if any) and remembers when the
// store confirmed it.
func (s *Server) storeBan(ctx context.Context, key string, until time.Time) error {
	s.mu.Lock()
	store := s.banStore
	s.mu.Unlock()
	if store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, banStoreTimeout)
	defer cancel()
	if err := store.AddBan(ctx, key, until); err != nil {
		return fmt.Errorf("stratum: share ban %s: %w", key, err)
	}
	s.mu.Lock()
	if _, ok := s.bans[key]; ok {
		s.banStored[key] = time.Now()
	}
	s.mu.Unlock()
	return nil
}
