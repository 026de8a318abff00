package economics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/secret"
	"github.com/lode-pool/lode/internal/webhook"
)

// FeedConfig is a JSON price feed over HTTP.
type FeedConfig struct {
	// URL is fetched with GET every Interval (default 1 min).
	URL string `yaml:"url" json:"url"`
	// Field is the dot path of the price in the JSON answer, e.g.
	// "bitcoin.usd" or "data.0.price" (numbers index arrays); the value may
	// be a JSON number or a numeric string.
	Field    string        `yaml:"field" json:"field"`
	Interval time.Duration `yaml:"interval" json:"interval"`
	// MaxAge is how long the last value stays in use after the feed stops
	// answering (default 15 min); after it the figures that need the price
	// are dropped.
	MaxAge time.Duration `yaml:"max_age" json:"max_age"`
	// Timeout bounds one fetch (default 10 s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// Token is the feed's API key: {env: NAME} or {file: /path}, never in
	// the file. It replaces {token} in URL when the URL has it (a key in
	// the query string); otherwise it is sent in Header.
	Token secret.Value `yaml:"token" json:"-"`
	// Header carries Token (default "Authorization", as "Bearer <token>";
	// any other header gets the token as it is, e.g. x-cg-pro-api-key).
	Header string `yaml:"header" json:"header,omitempty"`
}

// Feed defaults.
const (
	DefaultFeedInterval = time.Minute
	DefaultFeedMaxAge   = 15 * time.Minute
	DefaultFeedTimeout  = 10 * time.Second
	maxFeedBody         = 1 << 20
)

func (f FeedConfig) withDefaults() FeedConfig {
	if f.Interval == 0 {
		f.Interval = DefaultFeedInterval
	}
	if f.MaxAge == 0 {
		f.MaxAge = DefaultFeedMaxAge
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultFeedTimeout
	}
	return f
}

// Feed polls one price feed and keeps the last good value with the time it
// was fetched. A failing or malformed answer keeps the previous value; the
// value's age tells how stale it is. It never blocks a reader.
type Feed struct {
	cfg        FeedConfig
	client     *http.Client
	logger     *zap.Logger
	allowBelow bool // accept zero and negative values (power prices can go negative)
	now        func() time.Time

	mu      sync.Mutex
	value   float64
	fetched time.Time
	lastErr error
}

// NewFeed returns a feed; Run polls it. positiveOnly rejects values ≤ 0
// (a BTC price must divide).
func NewFeed(cfg FeedConfig, positiveOnly bool, logger *zap.Logger) *Feed {
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	return &Feed{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, logger: logger, allowBelow: !positiveOnly, now: time.Now}
}

// FeedValue is a feed's last value as of a given time.
type FeedValue struct {
	Value float64
	Age   time.Duration
	// Have is false before the first good fetch; Fresh is false once Age
	// passed MaxAge (then the value must not be used for figures).
	Have, Fresh bool
	Err         string // the last fetch error, if the last fetch failed
}

// Value returns the last good value and its age at now.
func (f *Feed) Value(now time.Time) FeedValue {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := FeedValue{Value: f.value, Have: !f.fetched.IsZero()}
	if f.lastErr != nil {
		v.Err = f.lastErr.Error()
	}
	if v.Have {
		v.Age = max(now.Sub(f.fetched), 0)
		v.Fresh = v.Age <= f.cfg.MaxAge
	}
	return v
}

// Fetch fetches the feed once and stores the value on success.
func (f *Feed) Fetch(ctx context.Context) error {
	v, err := f.fetch(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastErr = err
	if err != nil {
		return err
	}
	f.value, f.fetched = v, f.now()
	return nil
}

func (f *Feed) fetch(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	// Errors name f.cfg.URL, with {token} where the key goes.
	target, hide := webhook.Target(f.cfg.URL, f.cfg.Token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, hide(fmt.Errorf("price feed %s: %w", f.cfg.URL, err))
	}
	req.Header.Set("Accept", "application/json")
	if tok := f.cfg.Token.Reveal(); tok != "" && !strings.Contains(f.cfg.URL, webhook.TokenPlaceholder) {
		if f.cfg.Header == "" || strings.EqualFold(f.cfg.Header, "Authorization") {
			req.Header.Set("Authorization", "Bearer "+tok)
		} else {
			req.Header.Set(f.cfg.Header, tok)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, hide(fmt.Errorf("price feed: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxFeedBody))
		return 0, fmt.Errorf("price feed %s: HTTP %d", f.cfg.URL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFeedBody))
	if err != nil {
		return 0, fmt.Errorf("price feed %s: read: %w", f.cfg.URL, err)
	}
	v, err := ExtractPrice(body, f.cfg.Field)
	if err != nil {
		return 0, fmt.Errorf("price feed %s: %w", f.cfg.URL, err)
	}
	if !f.allowBelow && v <= 0 {
		return 0, fmt.Errorf("price feed %s: %s = %v, want a positive price", f.cfg.URL, f.cfg.Field, v)
	}
	return v, nil
}

// ErrFeedValue is wrapped when a feed's answer does not hold a usable
// number at the configured field.
var ErrFeedValue = errors.New("no usable price")

// ExtractPrice reads the number at a dot path in a JSON document. The
// value may be a number or a numeric string; NaN and infinities are
// refused.
func ExtractPrice(doc []byte, field string) (float64, error) {
	var root any
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return 0, fmt.Errorf("%w: invalid JSON: %v", ErrFeedValue, err)
	}
	cur := root
	if field != "" {
		for _, part := range strings.Split(field, ".") {
			switch node := cur.(type) {
			case map[string]any:
				next, ok := node[part]
				if !ok {
					return 0, fmt.Errorf("%w: %q has no %q", ErrFeedValue, field, part)
				}
				cur = next
			case []any:
				i, err := strconv.Atoi(part)
				if err != nil || i < 0 || i >= len(node) {
					return 0, fmt.Errorf("%w: %q: index %q out of range", ErrFeedValue, field, part)
				}
				cur = node[i]
			default:
				return 0, fmt.Errorf("%w: %q: %q is not an object or array", ErrFeedValue, field, part)
			}
		}
	}
	var s string
	switch v := cur.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		return 0, fmt.Errorf("%w: %q is %T, want a number", ErrFeedValue, field, cur)
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("%w: %q = %q is not a finite number", ErrFeedValue, field, s)
	}
	return x, nil
}

// pollLoop fetches the feed every Interval until ctx ends. Must be run as
// a goroutine.
func (f *Feed) pollLoop(ctx context.Context) {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		if err := f.Fetch(ctx); err != nil && ctx.Err() == nil {
			f.logger.Warn("price feed fetch failed", zap.String("url", f.cfg.URL), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// TimeOfUse is one rate of a time-of-use schedule: Price applies on Days
// (mon … sun; empty: every day) from From to To ("HH:MM", To exclusive; a
// To before From runs past midnight into the next day).
type TimeOfUse struct {
	Days  []string `yaml:"days" json:"days"`
	From  string   `yaml:"from" json:"from"`
	To    string   `yaml:"to" json:"to"`
	Price float64  `yaml:"price" json:"price"`
}

// Window is a time interval [From, To), e.g. a demand-response event.
type Window struct {
	From time.Time `yaml:"from" json:"from"`
	To   time.Time `yaml:"to" json:"to"`
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// parseClock parses "HH:MM" into minutes after midnight (24:00 allowed).
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return hh*60 + mm, nil
}

// applies reports whether the rate covers local time t.
func (r TimeOfUse) applies(t time.Time) bool {
	from, _ := parseClock(r.From)
	to, _ := parseClock(r.To)
	minute := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if to <= from { // past midnight: the part after midnight belongs to the previous day's rate
		if minute >= from {
			return r.onDay(day)
		}
		if minute < to {
			return r.onDay((day + 6) % 7)
		}
		return false
	}
	return minute >= from && minute < to && r.onDay(day)
}

func (r TimeOfUse) onDay(d time.Weekday) bool {
	if len(r.Days) == 0 {
		return true
	}
	for _, s := range r.Days {
		if weekdays[strings.ToLower(s)] == d {
			return true
		}
	}
	return false
}
