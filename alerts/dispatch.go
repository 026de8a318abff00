package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/secret"
	"github.com/lode-pool/lode/internal/webhook"
)

// Dispatcher delivers events to the operator's channels and the miners'
// subscriptions. Send never blocks: each receiver has its own queue and
// goroutine (webhook.Notifier, or the Mailer for email), so a dead
// receiver delays only its own events, which are retried and then dropped
// with a log line and a metric.
type Dispatcher struct {
	cfg    Config
	store  Store
	log    *zap.Logger
	mailer *Mailer
	// private is the transport of miners' receivers: it refuses loopback
	// and private addresses unless alerts.allow_private_targets.
	private http.RoundTripper

	mu       sync.Mutex
	ctx      context.Context // set by Run; nil before
	wg       sync.WaitGroup
	operator []*channel
	subs     map[string]*channel // by subscription ID
	list     []Subscription
	gone     map[string]Counts // counts of removed channels, by kind
}

// channel is one receiver.
type channel struct {
	kind    string
	sub     *Subscription // nil for the operator's
	n       *webhook.Notifier
	format  func(ev Event, id string) ([]byte, error)
	cancel  context.CancelFunc
	started bool
}

// Counts are a channel kind's delivery outcomes.
type Counts struct{ Delivered, Failed, Dropped uint64 }

// NewDispatcher returns a dispatcher for the operator channels of cfg and
// the subscriptions in store (nil: operator channels only).
func NewDispatcher(cfg Config, store Store, log *zap.Logger) *Dispatcher {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	d := &Dispatcher{cfg: cfg, store: store, log: log, subs: map[string]*channel{}, gone: map[string]Counts{}}
	if !cfg.AllowPrivateTargets {
		d.private = publicOnlyTransport()
	}
	if cfg.Webhook.URL != "" {
		d.operator = append(d.operator, &channel{kind: KindWebhook, n: webhook.New(cfg.Webhook, log.Named("webhook")), format: jsonEvent})
	}
	for _, ch := range cfg.Chat {
		wc := cfg.Webhook
		wc.URL, wc.Secret, wc.Token = ch.URL, secret.Value{}, ch.Token
		d.operator = append(d.operator, &channel{kind: ch.Kind, n: webhook.New(wc, log.Named(ch.Kind)), format: chatFormat(ch.Kind, ch.ChatID)})
	}
	if cfg.Email.Server != "" {
		d.mailer = NewMailer(cfg.Email, cfg.Webhook, log.Named("email"))
	}
	return d
}

func jsonEvent(ev Event, id string) ([]byte, error) {
	ev.ID = id
	return json.Marshal(ev)
}

// chatFormat is the body a chat webhook takes: Discord's (and Slack's
// compatible) {"content"}, or Telegram's sendMessage {"chat_id","text"}.
func chatFormat(kind, chatID string) func(Event, string) ([]byte, error) {
	return func(ev Event, _ string) ([]byte, error) {
		text := "lode: " + ev.Message
		if kind == KindTelegram {
			return json.Marshal(map[string]string{"chat_id": chatID, "text": text})
		}
		return json.Marshal(map[string]string{"content": text})
	}
}

// Send delivers ev to every channel that wants it. It never blocks on a
// receiver.
func (d *Dispatcher) Send(ev Event) {
	describe(&ev)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ch := range d.operator {
		ch.notify(ev)
	}
	if d.mailer != nil && len(d.cfg.Email.To) > 0 {
		d.mailer.Send(d.cfg.Email.To, ev)
	}
	for i := range d.list {
		s := &d.list[i]
		if !s.wants(&ev) {
			continue
		}
		if s.Kind == KindEmail {
			if d.mailer != nil {
				d.mailer.Send([]string{s.Email}, ev)
			}
			continue
		}
		ch := d.subs[s.ID]
		if ch == nil {
			ch = d.subscriptionChannel(s)
			d.subs[s.ID] = ch
		}
		ch.notify(ev)
	}
}

func (ch *channel) notify(ev Event) {
	ch.n.Notify(func(id string) ([]byte, error) { return ch.format(ev, id) })
}

// subscriptionChannel makes (and, once Run has started, starts) the
// channel of a subscription. d.mu is held.
func (d *Dispatcher) subscriptionChannel(s *Subscription) *channel {
	wc := d.cfg.Delivery
	wc.URL, wc.Secret = s.URL, secret.Literal(s.Secret)
	format := jsonEvent
	if s.Kind == KindDiscord || s.Kind == KindTelegram {
		format = chatFormat(s.Kind, s.ChatID)
	}
	ch := &channel{kind: s.Kind, sub: s, n: webhook.NewWithTransport(wc, d.private, d.log.Named("subscription")), format: format}
	d.start(ch)
	return ch
}

// start runs a channel's notifier under the dispatcher's context. d.mu is
// held.
func (d *Dispatcher) start(ch *channel) {
	if d.ctx == nil || ch.started {
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	ch.cancel, ch.started = cancel, true
	d.wg.Add(1)
	go func() { defer d.wg.Done(); ch.n.Run(ctx) }()
}

// Run delivers until ctx ends, reloading the subscriptions every Interval
// (the API may run in another process).
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	d.ctx = ctx
	// A Run after an earlier one ended (the alerts lease came back):
	// the channels' goroutines ended with it and start again.
	for _, ch := range d.operator {
		ch.started = false
		d.start(ch)
	}
	for _, ch := range d.subs {
		ch.started = false
		d.start(ch)
	}
	d.mu.Unlock()
	if d.mailer != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.mailer.Run(ctx) }()
	}
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		if err := d.Reload(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("alerts: subscriptions not read; keeping the previous list", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// Reload reads the subscriptions; channels of removed or changed ones
// stop.
func (d *Dispatcher) Reload(ctx context.Context) error {
	if d.store == nil {
		return nil
	}
	list, err := d.store.Subscriptions(ctx)
	if err != nil {
		return fmt.Errorf("alerts: read subscriptions: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	keep := map[string]bool{}
	for _, s := range list {
		keep[s.ID] = true
	}
	for id, ch := range d.subs {
		if !keep[id] || !sameTarget(ch.sub, list) {
			if ch.cancel != nil {
				ch.cancel()
			}
			c := d.gone[ch.kind]
			c.Delivered += ch.n.Delivered.Load()
			c.Failed += ch.n.Failed.Load()
			c.Dropped += ch.n.Dropped.Load()
			d.gone[ch.kind] = c
			delete(d.subs, id)
		}
	}
	d.list = list
	return nil
}

func sameTarget(s *Subscription, list []Subscription) bool {
	i := slices.IndexFunc(list, func(x Subscription) bool { return x.ID == s.ID })
	return i >= 0 && list[i].URL == s.URL && list[i].Secret == s.Secret && list[i].ChatID == s.ChatID
}

// Counts returns the delivery outcomes per channel kind (webhook,
// discord, telegram, email).
func (d *Dispatcher) Counts() map[string]Counts {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]Counts{}
	for k, c := range d.gone {
		out[k] = c
	}
	add := func(ch *channel) {
		c := out[ch.kind]
		c.Delivered += ch.n.Delivered.Load()
		c.Failed += ch.n.Failed.Load()
		c.Dropped += ch.n.Dropped.Load()
		out[ch.kind] = c
	}
	for _, ch := range d.operator {
		add(ch)
	}
	for _, ch := range d.subs {
		add(ch)
	}
	if d.mailer != nil {
		out[KindEmail] = Counts{d.mailer.Delivered.Load(), d.mailer.Failed.Load(), d.mailer.Dropped.Load()}
	}
	return out
}

// errPrivateTarget refuses a miner's receiver inside the pool's network.
var errPrivateTarget = errors.New("alerts: receiver address is loopback, private or link-local (alerts.allow_private_targets is off)")

// publicOnlyTransport dials public addresses only (checked on the address
// actually dialled, after DNS), without a proxy.
func publicOnlyTransport() http.RoundTripper {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip := net.ParseIP(host)
		if ip == nil || !publicIP(ip) {
			return errPrivateTarget
		}
		return nil
	}}
	return &http.Transport{DialContext: dialer.DialContext, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second}
}

func publicIP(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast())
}
