package economics

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// WebhookConfig is where advice changes are POSTed.
type WebhookConfig struct {
	// URL receives a POST of one JSON event per advice change; empty: no
	// webhook.
	URL string `yaml:"url" json:"url"`
	// Secret keys the HMAC-SHA256 of the body sent in SignatureHeader
	// ("sha256=<hex>"). Required with a URL.
	Secret string `yaml:"secret" json:"-"`
	// Timeout bounds one delivery attempt (default 10 s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// MaxAttempts per event (default 10); backoff doubles from
	// InitialBackoff (default 1 s) up to MaxBackoff (default 5 min).
	MaxAttempts    int           `yaml:"max_attempts" json:"max_attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff" json:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff" json:"max_backoff"`
	// Queue is how many events wait for delivery (default 1024); when it
	// is full the oldest waiting event is dropped (and counted), so the
	// caller never waits.
	Queue int `yaml:"queue" json:"queue"`
}

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)).
const SignatureHeader = "X-Lode-Signature"

// Webhook defaults.
const (
	DefaultWebhookTimeout = 10 * time.Second
	DefaultWebhookTries   = 10
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultWebhookQueue   = 1024
)

func (w WebhookConfig) withDefaults() WebhookConfig {
	if w.Timeout == 0 {
		w.Timeout = DefaultWebhookTimeout
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = DefaultWebhookTries
	}
	if w.InitialBackoff == 0 {
		w.InitialBackoff = DefaultInitialBackoff
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = DefaultMaxBackoff
	}
	if w.Queue == 0 {
		w.Queue = DefaultWebhookQueue
	}
	return w
}

func (w WebhookConfig) validate() error {
	if w.URL == "" {
		return nil
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("webhook.url", w.URL, "must be an http(s) URL")
	}
	if w.Secret == "" {
		return bad("webhook.secret", "", "is required with a webhook url (receivers check the signature)")
	}
	if w.Timeout < 0 {
		return bad("webhook.timeout", w.Timeout, "must not be negative")
	}
	if w.MaxAttempts < 0 {
		return bad("webhook.max_attempts", w.MaxAttempts, "must not be negative")
	}
	if w.InitialBackoff < 0 {
		return bad("webhook.initial_backoff", w.InitialBackoff, "must not be negative")
	}
	if w.MaxBackoff < 0 {
		return bad("webhook.max_backoff", w.MaxBackoff, "must not be negative")
	}
	if w.Queue < 0 {
		return bad("webhook.queue", w.Queue, "must not be negative")
	}
	return nil
}

// Sign returns the SignatureHeader value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a SignatureHeader value in constant time, for
// receivers (and tests).
func VerifySignature(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// Event is one webhook delivery: an advice change.
type Event struct {
	// ID is unique per event and stable across retries (idempotency key).
	ID       string    `json:"id"`
	Type     string    `json:"type"`  // "advice_changed"
	Scope    string    `json:"scope"` // "worker" or "model"
	Key      string    `json:"key"`   // worker name or model name
	Advice   string    `json:"advice"`
	Previous string    `json:"previous"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
	// Watts the worker or model draws at its measured hashrate.
	Watts float64 `json:"watts"`
	// MarginSatsPerDay and its interval, when a power price is known.
	MarginSatsPerDay *Interval `json:"margin_sat_per_day,omitempty"`
}

// Notifier delivers events to the webhook in order, one at a time, with
// retries; Notify never blocks.
type Notifier struct {
	cfg    WebhookConfig
	client *http.Client
	logger *zap.Logger

	mu      sync.Mutex
	queue   []Event
	wake    chan struct{}
	nextID  atomic.Uint64
	started time.Time

	// Counters for metrics and tests.
	Delivered, Failed, Dropped, Attempts atomic.Uint64
}

// NewNotifier returns a notifier for cfg (defaults applied); with no URL it
// discards events.
func NewNotifier(cfg WebhookConfig, logger *zap.Logger) *Notifier {
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	return &Notifier{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, logger: logger, wake: make(chan struct{}, 1), started: time.Now()}
}

// Notify queues ev for delivery. It never blocks: with a full queue the
// oldest waiting event is dropped.
func (n *Notifier) Notify(ev Event) {
	if n == nil || n.cfg.URL == "" {
		return
	}
	ev.ID = strconv.FormatInt(n.started.UnixNano(), 36) + "-" + strconv.FormatUint(n.nextID.Add(1), 10)
	if ev.Type == "" {
		ev.Type = "advice_changed"
	}
	n.mu.Lock()
	if len(n.queue) >= n.cfg.Queue {
		n.queue = n.queue[1:]
		n.Dropped.Add(1)
	}
	n.queue = append(n.queue, ev)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Pending is the number of events waiting (including one being retried).
func (n *Notifier) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue)
}

// Run delivers events until ctx ends (deliverLoop). Events still queued
// then are not delivered.
func (n *Notifier) Run(ctx context.Context) {
	for {
		n.mu.Lock()
		var ev Event
		have := len(n.queue) > 0
		if have {
			ev = n.queue[0]
		}
		n.mu.Unlock()
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-n.wake:
				continue
			}
		}
		delivered := n.deliver(ctx, ev)
		if ctx.Err() != nil {
			return
		}
		n.mu.Lock()
		// The head may have been dropped by a full queue meanwhile (then it
		// is counted in Dropped, not Failed).
		head := len(n.queue) > 0 && n.queue[0].ID == ev.ID
		if head {
			n.queue = n.queue[1:]
		}
		n.mu.Unlock()
		switch {
		case delivered:
			n.Delivered.Add(1)
		case head:
			n.Failed.Add(1)
		}
	}
}

// deliver POSTs ev until a 2xx answer, MaxAttempts or ctx's end.
func (n *Notifier) deliver(ctx context.Context, ev Event) bool {
	body, err := json.Marshal(ev)
	if err != nil {
		n.logger.Error("webhook event does not encode", zap.Error(err))
		return false
	}
	sig := Sign(n.cfg.Secret, body)
	backoff := n.cfg.InitialBackoff
	for attempt := 1; attempt <= n.cfg.MaxAttempts; attempt++ {
		n.Attempts.Add(1)
		err := n.post(ctx, body, sig, ev.ID)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		n.logger.Warn("webhook delivery failed", zap.String("event", ev.ID), zap.Int("attempt", attempt), zap.Error(err))
		if attempt == n.cfg.MaxAttempts {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, n.cfg.MaxBackoff)
		if !n.isHead(ev.ID) {
			return false // dropped by a full queue while we waited: give up on it
		}
	}
	n.logger.Error("webhook event given up", zap.String("event", ev.ID), zap.Int("attempts", n.cfg.MaxAttempts))
	return false
}

// isHead reports whether the event is still the head of the queue.
func (n *Notifier) isHead(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue) > 0 && n.queue[0].ID == id
}

func (n *Notifier) post(ctx context.Context, body []byte, sig, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set("X-Lode-Event-Id", id)
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook post: HTTP %d", resp.StatusCode)
	}
	return nil
}
