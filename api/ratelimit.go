package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the per-client rate limit of the public API. The dashboard
// makes five requests every 10 s (six with a miner open); a script polling
// every endpoint once a second stays well inside.
const (
	DefaultRateLimit = 10 // requests per second, sustained
	DefaultRateBurst = 40
)

// maxClients bounds the limiter table. A client idle long enough to have
// refilled its bucket is forgotten (a new limiter starts full, so nothing is
// lost); past this many active clients the table starts over.
const maxClients = 100_000

// clientLimits keeps one token bucket per client IP.
type clientLimits struct {
	limit rate.Limit
	burst int
	// idle is how long a bucket takes to refill from empty; a client idle
	// that long is the same as a new one.
	idle time.Duration

	mu      sync.Mutex
	clients map[string]*clientLimit
	swept   time.Time
}

type clientLimit struct {
	lim  *rate.Limiter
	last time.Time
}

func newClientLimits(limit rate.Limit, burst int) *clientLimits {
	idle := time.Duration(float64(burst) / float64(limit) * float64(time.Second))
	return &clientLimits{limit: limit, burst: burst, idle: max(idle, time.Second), clients: map[string]*clientLimit{}}
}

// allow takes a token for ip; when none is left it returns how long until
// one is.
func (c *clientLimits) allow(ip string, now time.Time) (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.clients[ip]
	if cl == nil {
		if len(c.clients) >= maxClients/2 && now.Sub(c.swept) >= c.idle {
			c.sweepLocked(now)
		}
		if len(c.clients) >= maxClients {
			clear(c.clients) // forgetting only makes clients start full
		}
		cl = &clientLimit{lim: rate.NewLimiter(c.limit, c.burst)}
		c.clients[ip] = cl
	}
	cl.last = now
	r := cl.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweepLocked forgets the clients whose buckets are full again.
func (c *clientLimits) sweepLocked(now time.Time) {
	for ip, cl := range c.clients {
		if now.Sub(cl.last) >= c.idle {
			delete(c.clients, ip)
		}
	}
	c.swept = now
}

// limited wraps a public endpoint with the per-client rate limit.
func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	if s.limits == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ok, wait := s.limits.allow(limitKey(s.clientIP(r)), time.Now())
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, "rate limit exceeded: retry later")
			return
		}
		h(w, r)
	}
}

// limitKey is what one bucket counts: an IPv4 address, or an IPv6 /64
// (one subscriber's network: a client that owns a /64 could otherwise take
// a fresh bucket per address).
func limitKey(ip string) string {
	a := net.ParseIP(ip)
	if a == nil || a.To4() != nil {
		return ip
	}
	return a.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// clientIP is the address the rate limit counts a request against: the
// connection's peer, or with TrustForwardedFor and a loopback peer (a
// reverse proxy on this host) the last X-Forwarded-For entry, the one that
// proxy added.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if s.cfg.TrustForwardedFor {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
				last := xff[len(xff)-1]
				if i := strings.LastIndexByte(last, ','); i >= 0 {
					last = last[i+1:]
				}
				if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
					return ip.String()
				}
			}
		}
	}
	return host
}
