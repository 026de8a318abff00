package alerts

import (
	"context"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/webhook"
)

// Mailer sends events by SMTP, in order, one at a time, retried with the
// webhook policy's backoff; Send never blocks (a full queue drops its
// oldest message, counted).
type Mailer struct {
	cfg    EmailConfig
	policy webhook.Config
	log    *zap.Logger

	mu    sync.Mutex
	queue []message
	wake  chan struct{}

	Delivered, Failed, Dropped, Attempts atomic.Uint64
}

type message struct {
	to  []string
	msg []byte
}

// NewMailer returns a mailer for cfg with policy's attempts, backoff and
// queue length.
func NewMailer(cfg EmailConfig, policy webhook.Config, log *zap.Logger) *Mailer {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultEmailTimeout
	}
	return &Mailer{cfg: cfg, policy: policy.WithDefaults(), log: log, wake: make(chan struct{}, 1)}
}

// Send queues ev for the recipients.
func (m *Mailer) Send(to []string, ev Event) {
	describe(&ev)
	subject := "lode: " + ev.Type
	if ev.Address != "" {
		subject += " " + ev.Address
	}
	// Worker names come from miners: no header may be injected.
	oneLine := strings.NewReplacer("\r", " ", "\n", " ")
	subject = oneLine.Replace(subject)
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		m.cfg.From, strings.Join(to, ", "), subject, ev.Time.UTC().Format(time.RFC1123Z), ev.Message)
	m.mu.Lock()
	if len(m.queue) >= m.policy.Queue {
		m.queue = m.queue[1:]
		m.Dropped.Add(1)
		m.log.Warn("email queue full: oldest message dropped")
	}
	m.queue = append(m.queue, message{to: to, msg: []byte(b.String())})
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends.
func (m *Mailer) Run(ctx context.Context) {
	for {
		m.mu.Lock()
		var next message
		have := len(m.queue) > 0
		if have {
			next = m.queue[0]
			m.queue = m.queue[1:]
		}
		m.mu.Unlock()
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				continue
			}
		}
		if m.deliver(ctx, next) {
			m.Delivered.Add(1)
		} else if ctx.Err() == nil {
			m.Failed.Add(1)
		}
	}
}

func (m *Mailer) deliver(ctx context.Context, ml message) bool {
	ok := webhook.Retry(ctx, m.policy.MaxAttempts, m.policy.InitialBackoff, m.policy.MaxBackoff, func(attempt int) error {
		m.Attempts.Add(1)
		err := m.sendOnce(ctx, ml)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("email delivery failed", zap.Int("attempt", attempt), zap.Error(err))
		}
		return err
	}, nil)
	if !ok && ctx.Err() == nil {
		m.log.Error("email given up", zap.Strings("to", ml.to), zap.Int("attempts", m.policy.MaxAttempts))
	}
	return ok
}

// sendOnce is one SMTP conversation (STARTTLS when the server offers it,
// AUTH PLAIN when a username is set), bounded by cfg.Timeout.
func (m *Mailer) sendOnce(ctx context.Context, ml message) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Server)
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(m.cfg.Server)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("smtp hello: %w", err)
	}
	defer func() { _ = c.Close() }()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(nil); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password.Reveal(), host)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return fmt.Errorf("smtp mail from: %w", err)
	}
	for _, to := range ml.to {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp rcpt %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(ml.msg); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	return c.Quit()
}
