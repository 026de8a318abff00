package api

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/lode-pool/lode/payouts/payment"
)

//go:embed dashboard
var dashboardFiles embed.FS

// DefaultListen is where the API listens unless configured: loopback only,
// because the admin endpoints and the metrics are not meant for the world.
const DefaultListen = "127.0.0.1:8080"

// Config configures a Server. Readers left nil make their endpoints answer
// 503 (the role that provides them is not wired), so a frontend-only process
// can still serve /metrics and the probes.
type Config struct {
	// Listen is the TCP address (default DefaultListen).
	Listen string
	// AdminToken enables the admin endpoints when not empty; requests must
	// carry "Authorization: Bearer <token>".
	AdminToken string
	// FeePercent and PPLNSWindow are reported by /api/v1/pool.
	FeePercent  float64
	PPLNSWindow float64
	// Network reports the current height and network difficulty; nil leaves
	// them zero (and round progress unknown).
	Network func() (Network, bool)
	// HistoryInterval is how often the pool hashrate is sampled for the
	// chart (default 1 min); HistoryLength how many samples are kept
	// (default 1440, one day at the default interval).
	HistoryInterval time.Duration
	HistoryLength   int
	// ReadyTimeout bounds each readiness check (default 2 s).
	ReadyTimeout time.Duration
	// WorkerOfflineAfter marks a worker offline when its last share is
	// older (default 10 min).
	WorkerOfflineAfter time.Duration
	// PayoutThreshold is the pool's default payout threshold in satoshis,
	// shown for addresses without an override.
	PayoutThreshold int64
	// ExplorerURL is the block explorer the dashboard links to (base URL
	// serving /tx/, /block/, /address/), "" for none.
	ExplorerURL string
	// Series reads hashrate series for the charts; nil answers 503.
	Series SeriesReader
	// TopMiners lists the top addresses by hashrate; nil answers 503.
	TopMiners MinerLister

	Pool       PoolReader
	Blocks     BlockLister
	Miners     MinerReader
	Payments   PaymentLister
	Workers    WorkerLister
	Banner     Banner
	Thresholds ThresholdSetter
	// Economics serves /api/v1/economics and below (economics.NewHandler),
	// Alerts /api/v1/alerts/ and AlertsAdmin /api/v1/admin/alerts/ (package
	// alerts); nil answers 503 (see economics.go).
	Economics, Alerts, AlertsAdmin http.Handler
	// CanonicalAddress checks a payout address taken from a request path
	// and returns the spelling the store keys addresses by (btcutil's
	// encoding: lowercase bech32, see internal/btcaddr), so "BC1Q…" and
	// "bc1q…" name one miner. When nil, ValidAddress checks the address
	// and its text is used as given.
	CanonicalAddress func(string) (string, error)
	// ValidAddress reports whether a payout address is well formed for the
	// pool's network; nil accepts anything non-empty. Ignored when
	// CanonicalAddress is set.
	ValidAddress func(string) error
	// RateLimit is how many requests per second each client IP may make to
	// the public /api/v1 endpoints, sustained (default DefaultRateLimit);
	// RateBurst how many it may make at once (default DefaultRateBurst).
	// Over it the answer is 429 with Retry-After. A negative RateLimit
	// turns the limit off. Admin endpoints, probes, /metrics and the
	// dashboard files are not limited.
	RateLimit float64
	RateBurst int
	// TrustForwardedFor takes the client IP from the last X-Forwarded-For
	// entry when the request comes from a loopback address (a reverse proxy
	// on the same host); otherwise every client behind the proxy would share
	// one rate limit. Leave it off when the API is reached directly.
	TrustForwardedFor bool
	// Checks are the readiness conditions of /readyz.
	Checks  []Check
	Metrics *Metrics
	Logger  *zap.Logger
}

// Server serves the API, metrics and dashboard.
type Server struct {
	cfg     Config
	log     *zap.Logger
	history *History
	mux     *http.ServeMux
	limits  *clientLimits // nil when the rate limit is off
	proofs  proofCache
}

// New checks cfg, fills defaults and builds the handler tree.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("api: listen address %q: %w", cfg.Listen, err)
	}
	if cfg.HistoryInterval <= 0 {
		cfg.HistoryInterval = time.Minute
	}
	if cfg.HistoryLength <= 0 {
		cfg.HistoryLength = 1440
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Second
	}
	if cfg.WorkerOfflineAfter <= 0 {
		cfg.WorkerOfflineAfter = DefaultWorkerOfflineAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(Sources{})
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if math.IsNaN(cfg.RateLimit) || math.IsInf(cfg.RateLimit, 0) || cfg.RateBurst < 1 {
		return nil, fmt.Errorf("api: rate limit %v/s burst %d: want a finite rate and a burst of at least 1", cfg.RateLimit, cfg.RateBurst)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, history: NewHistory(cfg.HistoryLength), mux: http.NewServeMux()}
	if cfg.RateLimit > 0 {
		s.limits = newClientLimits(rate.Limit(cfg.RateLimit), cfg.RateBurst)
	}
	s.routes()
	return s, nil
}

// History returns the hashrate history the chart reads.
func (s *Server) History() *History { return s.history }

// Handler returns the root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/v1/pool", s.limited(s.handlePool))
	m.HandleFunc("GET /api/v1/pool/history", s.limited(s.handleHistory))
	m.HandleFunc("GET /api/v1/pool/hashrate", s.limited(s.handleSeries))
	m.HandleFunc("GET /api/v1/miners/{address}/hashrate", s.limited(s.handleSeries))
	m.HandleFunc("GET /api/v1/miners", s.limited(s.handleTopMiners))
	m.HandleFunc("GET /api/v1/blocks", s.limited(s.handleBlocks))
	m.HandleFunc("GET /api/v1/blocks/{hash}/window", s.limited(s.handleBlockWindow))
	m.HandleFunc("GET /api/v1/blocks/{hash}/proof", s.limited(s.handleBlockProof))
	m.HandleFunc("GET /api/v1/workers", s.limited(s.handleWorkers))
	m.HandleFunc("GET /api/v1/miners/{address}", s.limited(s.handleMiner))
	m.HandleFunc("GET /api/v1/payments", s.limited(s.handlePayments))
	m.HandleFunc("POST /api/v1/admin/ban", s.admin(s.handleBan))
	m.HandleFunc("POST /api/v1/admin/unban", s.admin(s.handleUnban))
	m.HandleFunc("PUT /api/v1/admin/miners/{address}/threshold", s.admin(s.handleThreshold))
	s.handlerRoutes(m)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /readyz", s.handleReady)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Metrics.Registry(), promhttp.HandlerOpts{}))
	static, _ := fs.Sub(dashboardFiles, "dashboard")
	m.Handle("GET /", http.FileServerFS(static))
	m.HandleFunc("GET /api/", s.limited(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	}))
}

// Run serves until ctx ends, then shuts the HTTP server down, giving
// in-flight requests up to five seconds. It also samples the hashrate
// history when a PoolReader is configured.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	if s.cfg.Pool != nil {
		go func() {
			defer close(done)
			s.sampleLoop(ctx)
		}()
	} else {
		close(done)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("api listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		<-done
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

// sampleLoop records the pool hashrate every HistoryInterval; it must be run
// as a goroutine and returns when ctx ends.
func (s *Server) sampleLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.HistoryInterval)
	defer t.Stop()
	for {
		s.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample reads the pool hashrate once and appends it to the history.
func (s *Server) Sample(ctx context.Context) {
	if s.cfg.Pool == nil {
		return
	}
	st, err := s.cfg.Pool.PoolStats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("hashrate sample failed", zap.Error(err))
		}
		return
	}
	s.history.Add(HashratePoint{Time: time.Now().UTC(), Hashrate: st.Hashrate.TenMinutes})
}

// PoolResponse is the body of GET /api/v1/pool.
type PoolResponse struct {
	PoolStats
	Network Network `json:"network"`
	// RoundProgress is RoundDifficulty ÷ network difficulty: 1.0 means the
	// pool has done one block's worth of expected work this round.
	RoundProgress float64 `json:"round_progress"`
	FeePercent    float64 `json:"fee_percent"`
	PPLNSWindow   float64 `json:"pplns_window"`
	// RejectRate is (rejected + stale) ÷ all shares since the stats began.
	RejectRate float64 `json:"reject_rate"`
	// Explorer is the block explorer base URL the dashboard links to ("":
	// no links); WorkerOfflineAfter the seconds without a share after
	// which a worker shows as offline.
	Explorer           string  `json:"explorer"`
	WorkerOfflineAfter float64 `json:"worker_offline_after"`
}

func (s *Server) handlePool(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Pool == nil {
		writeError(w, http.StatusServiceUnavailable, "pool statistics are not available in this process")
		return
	}
	st, err := s.cfg.Pool.PoolStats(r.Context())
	if err != nil {
		s.internal(w, "pool stats", err)
		return
	}
	resp := PoolResponse{PoolStats: st, FeePercent: s.cfg.FeePercent, PPLNSWindow: s.cfg.PPLNSWindow,
		Explorer: s.cfg.ExplorerURL, WorkerOfflineAfter: s.cfg.WorkerOfflineAfter.Seconds()}
	if total := st.SharesAccepted + st.SharesRejected + st.SharesStale; total > 0 {
		resp.RejectRate = float64(st.SharesRejected+st.SharesStale) / float64(total)
	}
	if n, ok := s.network(); ok {
		resp.Network = n
		if n.Difficulty > 0 {
			resp.RoundProgress = st.RoundDifficulty / n.Difficulty
		}
		if resp.LastBlock != nil {
			fillConfirmations(resp.LastBlock, n.Height)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) network() (Network, bool) {
	if s.cfg.Network == nil {
		return Network{}, false
	}
	return s.cfg.Network()
}

// fillConfirmations derives confirmations from the tip when the reader left
// them zero; Network.Height is the height being mined, so the tip is one less.
func fillConfirmations(b *Block, mining int64) {
	if b.Confirmations != 0 || b.Status == BlockOrphaned || b.Status == BlockPending || mining <= b.Height {
		return
	}
	b.Confirmations = mining - b.Height
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"interval_seconds": s.cfg.HistoryInterval.Seconds(),
		"points":           s.history.Points(),
	})
}

func (s *Server) handleBlocks(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Blocks == nil {
		writeError(w, http.StatusServiceUnavailable, "blocks are not available in this process")
		return
	}
	fill := func(blocks []Block) {
		if n, ok := s.network(); ok {
			for i := range blocks {
				fillConfirmations(&blocks[i], n.Height)
			}
		}
	}
	if pager, ok := s.cfg.Blocks.(BlockPager); ok {
		servePage(s, w, r, "blocks", func(ctx context.Context, offset, limit int) ([]Block, int, error) {
			blocks, total, err := pager.BlocksPage(ctx, offset, limit)
			fill(blocks)
			return blocks, total, err
		})
		return
	}
	serveList(s, w, r, "blocks", func(ctx context.Context, limit int) ([]Block, error) {
		blocks, err := s.cfg.Blocks.Blocks(ctx, limit)
		fill(blocks)
		return blocks, err
	})
}

func (s *Server) handleWorkers(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Workers == nil {
		writeError(w, http.StatusServiceUnavailable, "workers are not available in this process")
		return
	}
	serveList(s, w, r, "workers", func(ctx context.Context, limit int) ([]Worker, error) {
		ws, err := s.cfg.Workers.Workers(ctx, limit)
		s.decorateWorkers(ws, time.Now())
		return ws, err
	})
}

// DefaultWorkerOfflineAfter is Config.WorkerOfflineAfter's default.
const DefaultWorkerOfflineAfter = 10 * time.Minute

// decorateWorkers fills each worker's reject rate and offline flag.
func (s *Server) decorateWorkers(ws []Worker, now time.Time) {
	for i := range ws {
		w := &ws[i]
		if total := w.Accepted + w.Rejected + w.Stale; total > 0 {
			w.RejectRate = float64(w.Rejected+w.Stale) / float64(total)
		}
		w.Offline = w.LastShare.IsZero() || now.Sub(w.LastShare) > s.cfg.WorkerOfflineAfter
	}
}

func (s *Server) handlePayments(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Payments == nil {
		writeError(w, http.StatusServiceUnavailable, "payments are not available in this process")
		return
	}
	if pager, ok := s.cfg.Payments.(PaymentPager); ok {
		servePage(s, w, r, "payments", pager.PaymentsPage)
		return
	}
	serveList(s, w, r, "payments", s.cfg.Payments.Payments)
}

// MaxOffset bounds ?offset= of the paged lists.
const MaxOffset = 1 << 20

// servePage answers a paged list endpoint: ?limit and ?offset, the read,
// and {"<name>": [...], "total": n, "offset": o, "limit": l}.
func servePage[T any](s *Server, w http.ResponseWriter, r *http.Request, name string,
	page func(ctx context.Context, offset, limit int) ([]T, int, error)) {
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	offset := 0
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxOffset {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("offset: must be an integer from 0 to %d", MaxOffset))
			return
		}
		offset = n
	}
	items, total, err := page(r.Context(), offset, limit)
	if err != nil {
		s.internal(w, "list "+name, err)
		return
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{name: items, "total": total, "offset": offset, "limit": limit})
}

func (s *Server) handleTopMiners(w http.ResponseWriter, r *http.Request) {
	if s.cfg.TopMiners == nil {
		writeError(w, http.StatusServiceUnavailable, "miners are not available in this process")
		return
	}
	serveList(s, w, r, "miners", s.cfg.TopMiners.TopMiners)
}

// handleSeries answers GET /api/v1/pool/hashrate and
// /api/v1/miners/{address}/hashrate[?worker=name].
func (s *Server) handleSeries(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Series == nil {
		writeError(w, http.StatusServiceUnavailable, "hashrate series are not available in this process")
		return
	}
	var addr, worker string
	if r.PathValue("address") != "" {
		var ok bool
		if addr, ok = s.address(w, r); !ok {
			return
		}
		worker = r.URL.Query().Get("worker")
		if len(worker) > 128 {
			writeError(w, http.StatusBadRequest, "worker: at most 128 characters")
			return
		}
	}
	series, err := s.cfg.Series.HashrateSeries(r.Context(), addr, worker)
	if err != nil {
		s.internal(w, "hashrate series", err)
		return
	}
	writeJSON(w, http.StatusOK, series)
}

// serveList answers a list endpoint: ?limit, the read, and {"<name>": [...]}
// with an empty list rather than null.
func serveList[T any](s *Server, w http.ResponseWriter, r *http.Request, name string,
	list func(ctx context.Context, limit int) ([]T, error)) {
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	items, err := list(r.Context(), limit)
	if err != nil {
		s.internal(w, "list "+name, err)
		return
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{name: items})
}

func (s *Server) handleMiner(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Miners == nil {
		writeError(w, http.StatusServiceUnavailable, "miner statistics are not available in this process")
		return
	}
	addr, ok := s.address(w, r)
	if !ok {
		return
	}
	page, ok := parseWorkerPage(w, r)
	if !ok {
		return
	}
	m, err := s.cfg.Miners.Miner(r.Context(), addr, page)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "unknown address "+addr)
		return
	}
	if err != nil {
		s.internal(w, "read miner", err)
		return
	}
	if m.Workers == nil {
		m.Workers = []Worker{}
	}
	if m.Payments == nil {
		m.Payments = []Payment{}
	}
	if m.Credits == nil {
		m.Credits = []Credit{}
	}
	s.decorateWorkers(m.Workers, time.Now())
	if m.PayoutThreshold == 0 {
		m.PayoutThreshold = s.cfg.PayoutThreshold
	} else {
		m.PayoutThresholdOverride = true
	}
	m.EstimatedPerDay = s.estimatePerDay(r.Context(), m.Hashrate.OneDay)
	writeJSON(w, http.StatusOK, m)
}

// estimatePerDay is the satoshis a day hashrate (H/s) earns: its expected
// blocks a day, hashrate × 86400 ÷ (network difficulty × 2^32), times the
// last found block's coinbase value, less the pool fee. 0 when the network
// or a block is unknown.
func (s *Server) estimatePerDay(ctx context.Context, hashrate float64) int64 {
	n, ok := s.network()
	if !ok || !(n.Difficulty > 0) || !(hashrate > 0) || s.cfg.Blocks == nil {
		return 0
	}
	last, err := s.cfg.Blocks.Blocks(ctx, 1)
	if err != nil || len(last) == 0 {
		return 0
	}
	reward := last[0].Reward
	blocks := hashrate * 86400 / (n.Difficulty * 4294967296.0)
	v := blocks * float64(reward) * (1 - s.cfg.FeePercent/100)
	if math.IsNaN(v) || math.IsInf(v, 0) || v > math.MaxInt64/2 {
		return 0
	}
	return int64(v)
}

// Paging of a miner's workers (GET /api/v1/miners/{address}?limit=&offset=).
const (
	DefaultMinerWorkers = 50
	MaxMinerWorkers     = 200
)

// parseWorkerPage reads ?limit= (default DefaultMinerWorkers, at most
// MaxMinerWorkers) and ?offset= (default 0) of a miner's worker list,
// answering 400 itself. The bound keeps one request's work and size in
// proportion to a page, not to the address's worker count.
func parseWorkerPage(w http.ResponseWriter, r *http.Request) (WorkerPage, bool) {
	p := WorkerPage{Limit: DefaultMinerWorkers}
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxMinerWorkers {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: must be an integer from 1 to %d", MaxMinerWorkers))
			return WorkerPage{}, false
		}
		p.Limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<30 {
			writeError(w, http.StatusBadRequest, "offset: must be an integer ≥ 0")
			return WorkerPage{}, false
		}
		p.Offset = n
	}
	return p, true
}

// address reads and checks the {address} path value, answering 400 itself,
// and returns it in its canonical spelling.
func (s *Server) address(w http.ResponseWriter, r *http.Request) (string, bool) {
	addr := r.PathValue("address")
	if addr == "" || len(addr) > 100 {
		writeError(w, http.StatusBadRequest, "address: must be 1 to 100 characters")
		return "", false
	}
	if s.cfg.CanonicalAddress != nil {
		c, err := s.cfg.CanonicalAddress(addr)
		if err != nil {
			writeError(w, http.StatusBadRequest, "address: "+err.Error())
			return "", false
		}
		return c, true
	}
	if s.cfg.ValidAddress != nil {
		if err := s.cfg.ValidAddress(addr); err != nil {
			writeError(w, http.StatusBadRequest, "address: "+err.Error())
			return "", false
		}
	}
	return addr, true
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	type result struct {
		Name     string `json:"name"`
		OK       bool   `json:"ok"`
		Advisory bool   `json:"advisory,omitempty"`
		Error    string `json:"error,omitempty"`
	}
	results := make([]result, len(s.cfg.Checks))
	done := make(chan struct{}, len(s.cfg.Checks))
	for i, c := range s.cfg.Checks {
		go func() {
			defer func() { done <- struct{}{} }()
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
			defer cancel()
			res := result{Name: c.Name, OK: true, Advisory: c.Advisory}
			if err := c.Run(ctx); err != nil {
				res.OK, res.Error = false, err.Error()
			}
			results[i] = res
		}()
	}
	for range s.cfg.Checks {
		<-done
	}
	ready, degraded := true, false
	for _, res := range results {
		switch {
		case res.OK:
		case res.Advisory:
			degraded = true
		default:
			ready = false
		}
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "degraded": degraded, "checks": results})
}

// admin wraps h with the bearer-token check. Without a configured token the
// admin endpoints are off (403), so a forgotten token never opens them.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken == "" {
			writeError(w, http.StatusForbidden, "admin API disabled: set api.admin_token")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lode"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	}
}

type banRequest struct {
	Target   string `json:"target"`
	Duration string `json:"duration"`
}

func (s *Server) handleBan(w http.ResponseWriter, r *http.Request) {
	var req banRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Target == "" {
		writeError(w, http.StatusBadRequest, "target: required (an IP address or a worker name)")
		return
	}
	var d time.Duration
	if req.Duration != "" {
		var err error
		if d, err = time.ParseDuration(req.Duration); err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "duration: must be a positive Go duration such as 1h")
			return
		}
	}
	if s.cfg.Banner == nil {
		writeError(w, http.StatusServiceUnavailable, "bans are not available in this process")
		return
	}
	if err := s.cfg.Banner.Ban(r.Context(), req.Target, d); err != nil {
		s.internal(w, "ban", err)
		return
	}
	s.log.Info("banned by admin", zap.String("target", req.Target), zap.Duration("duration", d))
	writeJSON(w, http.StatusOK, map[string]any{"banned": req.Target})
}

func (s *Server) handleUnban(w http.ResponseWriter, r *http.Request) {
	var req banRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Target == "" {
		writeError(w, http.StatusBadRequest, "target: required (an IP address or a worker name)")
		return
	}
	if s.cfg.Banner == nil {
		writeError(w, http.StatusServiceUnavailable, "bans are not available in this process")
		return
	}
	if err := s.cfg.Banner.Unban(r.Context(), req.Target); err != nil {
		s.internal(w, "unban", err)
		return
	}
	s.log.Info("unbanned by admin", zap.String("target", req.Target))
	writeJSON(w, http.StatusOK, map[string]any{"unbanned": req.Target})
}

func (s *Server) handleThreshold(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Thresholds == nil {
		writeError(w, http.StatusServiceUnavailable, "payout thresholds are not available in this process")
		return
	}
	addr, ok := s.address(w, r)
	if !ok {
		return
	}
	var req struct {
		Threshold *int64 `json:"threshold"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Threshold == nil {
		writeError(w, http.StatusBadRequest, "threshold: required, satoshis (0 removes the override)")
		return
	}
	// The same rule as lodectl payouts threshold and the store.
	if err := payment.CheckThreshold(*req.Threshold); err != nil {
		writeError(w, http.StatusBadRequest, "threshold: "+err.Error())
		return
	}
	if err := s.cfg.Thresholds.SetPayoutThreshold(r.Context(), addr, *req.Threshold); err != nil {
		s.internal(w, "set payout threshold", err)
		return
	}
	s.log.Info("payout threshold set by admin", zap.String("address", addr), zap.Int64("threshold", *req.Threshold))
	writeJSON(w, http.StatusOK, map[string]any{"address": addr, "threshold": *req.Threshold})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

// parseLimit reads ?limit= (default 50, 1..1000), answering 400 itself.
func parseLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	q := r.URL.Query().Get("limit")
	if q == "" {
		return 50, true
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > 1000 {
		writeError(w, http.StatusBadRequest, "limit: must be an integer from 1 to 1000")
		return 0, false
	}
	return n, true
}

func (s *Server) internal(w http.ResponseWriter, what string, err error) {
	s.log.Error("api read failed", zap.String("what", what), zap.Error(err))
	writeError(w, http.StatusInternalServerError, what+" failed")
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
