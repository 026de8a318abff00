// Package webhook delivers signed JSON events to one HTTP receiver: in
// order, one at a time, retried with backoff, never blocking the caller (a
// full queue drops its oldest event, counted). Package economics sends its
// advice changes through it, package alerts its notifications.
//
// Every POST carries Content-Type application/json, EventIDHeader (stable
// across retries: an idempotency key) and SignatureHeader, "sha256=" and
// the hex HMAC-SHA256 of the raw body keyed with the secret; receivers
// check it with VerifySignature (constant time).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/secret"
)

// Config is one receiver and its delivery policy. Zero durations and
// counts take the defaults below.
type Config struct {
	// URL receives a POST of one JSON event at a time; empty: events are
	// discarded.
	URL string `yaml:"url" json:"url"`
	// Secret keys the HMAC-SHA256 of the body sent in SignatureHeader.
	// Required with a URL. lode.yaml names where it is kept: {env: NAME}
	// or {file: /path}.
	Secret secret.Value `yaml:"secret" json:"-"`
	// Token, when set, replaces TokenPlaceholder in URL at each request,
	// for receivers whose URL is itself a credential (a Telegram bot's,
	// a Discord webhook's). Logs and errors show URL with the placeholder.
	Token secret.Value `yaml:"-" json:"-"`
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

// TokenPlaceholder is where a URL takes its Token.
const TokenPlaceholder = "{token}"

// Target returns url with its TokenPlaceholder replaced by token (escaped
// for the path, or for the query after a '?'), and a function that hides
// the token in an error's text (net/http's errors quote the URL).
func Target(url string, token secret.Value) (string, func(error) error) {
	tok := token.Reveal()
	if tok == "" || !strings.Contains(url, TokenPlaceholder) {
		return url, func(err error) error { return err }
	}
	path, query, hasQuery := strings.Cut(url, "?")
	target := strings.ReplaceAll(path, TokenPlaceholder, neturl.PathEscape(tok))
	if hasQuery {
		target += "?" + strings.ReplaceAll(query, TokenPlaceholder, neturl.QueryEscape(tok))
	}
	return target, func(err error) error {
		if err == nil {
			return nil
		}
		msg := err.Error()
		for _, s := range []string{neturl.PathEscape(tok), neturl.QueryEscape(tok), tok} {
			msg = strings.ReplaceAll(msg, s, TokenPlaceholder)
		}
		if msg == err.Error() {
			return err
		}
		return errors.New(msg)
	}
}

// Headers of every delivery.
const (
	SignatureHeader = "X-Lode-Signature"
	EventIDHeader   = "X-Lode-Event-Id"
)

// Defaults.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxAttempts    = 10
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultQueue          = 1024
)

// WithDefaults fills zero values.
func (c Config) WithDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = DefaultInitialBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	return c
}

// FieldError is a bad value of Config, named by its yaml key (relative to
// the section holding the Config).
type FieldError struct {
	Key    string
	Value  any
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s = %v: %s", e.Key, e.Value, e.Reason) }

// Validate checks a receiver: an http(s) URL with a secret, no negative
// numbers. An empty URL is valid (no webhook). requireSecret false allows
// receivers that cannot check a signature (chat webhooks).
func (c Config) Validate() error { return c.validate(true) }

// ValidateUnsigned is Validate without requiring a secret.
func (c Config) ValidateUnsigned() error { return c.validate(false) }

func (c Config) validate(requireSecret bool) error {
	if c.URL == "" {
		return nil
	}
	if err := CheckURL(strings.ReplaceAll(c.URL, TokenPlaceholder, "token")); err != nil {
		return &FieldError{"url", c.URL, err.Error()}
	}
	if strings.Contains(c.URL, TokenPlaceholder) && !c.Token.IsSet() {
		return &FieldError{"token", "", "is required: the url has " + TokenPlaceholder}
	}
	if requireSecret && !c.Secret.IsSet() {
		return &FieldError{"secret", "", "is required with a webhook url (receivers check the signature)"}
	}
	for _, f := range []struct {
		key string
		v   int64
	}{{"timeout", int64(c.Timeout)}, {"max_attempts", int64(c.MaxAttempts)}, {"initial_backoff", int64(c.InitialBackoff)},
		{"max_backoff", int64(c.MaxBackoff)}, {"queue", int64(c.Queue)}} {
		if f.v < 0 {
			return &FieldError{f.key, f.v, "must not be negative"}
		}
	}
	return nil
}

// CheckURL accepts absolute http and https URLs.
func CheckURL(s string) error {
	u, err := neturl.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http(s) URL")
	}
	return nil
}

// Sign returns the SignatureHeader value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a SignatureHeader value in constant time.
func VerifySignature(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// item is one queued event.
type item struct {
	id   string
	body []byte
}

// Notifier delivers events to one receiver in order, one at a time, with
// retries; Notify never blocks.
type Notifier struct {
	cfg    Config
	client *http.Client
	logger *zap.Logger

	mu      sync.Mutex
	queue   []item
	wake    chan struct{}
	nextID  atomic.Uint64
	started time.Time

	// Counters for metrics and tests: events delivered, given up after
	// MaxAttempts, dropped from a full queue; POST attempts.
	Delivered, Failed, Dropped, Attempts atomic.Uint64
}

// New returns a notifier for cfg (defaults applied); with no URL it
// discards events.
func New(cfg Config, logger *zap.Logger) *Notifier { return NewWithTransport(cfg, nil, logger) }

// NewWithTransport is New with the HTTP transport to use (nil: Go's
// default), such as one that refuses private addresses for receivers
// that users, not the operator, configure.
func NewWithTransport(cfg Config, rt http.RoundTripper, logger *zap.Logger) *Notifier {
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg = cfg.WithDefaults()
	return &Notifier{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout, Transport: rt}, logger: logger,
		wake: make(chan struct{}, 1), started: time.Now()}
}

// Notify queues the event that body returns for the event id it is given
// (unique per notifier, stable across retries). It never blocks: with a
// full queue the oldest waiting event is dropped. It returns false when the
// event was not queued (no URL, or body failed).
func (n *Notifier) Notify(body func(id string) ([]byte, error)) bool {
	if n == nil || n.cfg.URL == "" {
		return false
	}
	id := strconv.FormatInt(n.started.UnixNano(), 36) + "-" + strconv.FormatUint(n.nextID.Add(1), 10)
	b, err := body(id)
	if err != nil {
		n.logger.Error("webhook event does not encode", zap.Error(err))
		return false
	}
	n.mu.Lock()
	if len(n.queue) >= n.cfg.Queue {
		n.queue = n.queue[1:]
		n.Dropped.Add(1)
		n.logger.Warn("webhook queue full: oldest event dropped", zap.String("url", n.cfg.URL))
	}
	n.queue = append(n.queue, item{id: id, body: b})
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return true
}

// Pending is the number of events waiting (including one being retried).
func (n *Notifier) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue)
}

// Run delivers events until ctx ends. Events still queued then are not
// delivered.
func (n *Notifier) Run(ctx context.Context) {
	for {
		n.mu.Lock()
		var ev item
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
		head := len(n.queue) > 0 && n.queue[0].id == ev.id
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
func (n *Notifier) deliver(ctx context.Context, ev item) bool {
	sig := Sign(n.cfg.Secret.Reveal(), ev.body)
	ok := Retry(ctx, n.cfg.MaxAttempts, n.cfg.InitialBackoff, n.cfg.MaxBackoff, func(attempt int) error {
		n.Attempts.Add(1)
		err := n.post(ctx, ev.body, sig, ev.id)
		if err != nil && ctx.Err() == nil {
			n.logger.Warn("webhook delivery failed", zap.String("event", ev.id), zap.Int("attempt", attempt), zap.Error(err))
		}
		return err
	}, func() bool {
		return n.isHead(ev.id) // dropped by a full queue while we waited: give up on it
	})
	if !ok && ctx.Err() == nil && n.isHead(ev.id) {
		n.logger.Error("webhook event given up", zap.String("event", ev.id), zap.String("url", n.cfg.URL),
			zap.Int("attempts", n.cfg.MaxAttempts))
	}
	return ok
}

// Retry calls attempt (numbered from 1) until it returns nil, maxAttempts
// calls were made or ctx ends, waiting initial between the first two calls
// and twice as long each time after, up to maxBackoff. keep, when not nil,
// is asked after each wait whether to go on. It reports whether an attempt
// succeeded. The alerts' other channels (email) retry the same way.
func Retry(ctx context.Context, maxAttempts int, initial, maxBackoff time.Duration, attempt func(n int) error, keep func() bool) bool {
	backoff := initial
	for n := 1; n <= maxAttempts; n++ {
		if attempt(n) == nil {
			return true
		}
		if ctx.Err() != nil || n == maxAttempts {
			return false
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
		if keep != nil && !keep() {
			return false
		}
	}
	return false
}

// isHead reports whether the event is still the head of the queue.
func (n *Notifier) isHead(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue) > 0 && n.queue[0].id == id
}

func (n *Notifier) post(ctx context.Context, body []byte, sig, id string) error {
	target, hide := Target(n.cfg.URL, n.cfg.Token)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return hide(fmt.Errorf("webhook request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set(EventIDHeader, id)
	resp, err := n.client.Do(req)
	if err != nil {
		return hide(fmt.Errorf("webhook post: %w", err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook post: HTTP %d", resp.StatusCode)
	}
	return nil
}
