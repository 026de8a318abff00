package blocktemplate

import (
	"context"
	"sync"
)

// subscriber is one fan-out consumer: an unbounded-in-practice queue filled
// by the Manager without blocking, drained by a forwarder goroutine into
// the subscriber's channel.
type subscriber struct {
	mu     sync.Mutex
	queue  []*Job
	max    int
	wake   chan struct{}
	out    chan *Job
	onDrop func(n int)
}

// Subscribe returns a channel that receives the current job (if any) and
// then every job the Manager publishes, in order. The Manager never waits
// for a subscriber: each has a backlog of up to SubscriberQueue jobs. A
// subscriber that falls further behind has its backlog collapsed to the
// newest job; if a dropped job was clean, the job delivered in its place is
// a copy marked CleanJobs=true (same ID), so the subscriber still learns
// that older work is stale. The channel is closed when ctx is done;
// stopping the Manager does not close it.
func (m *Manager) Subscribe(ctx context.Context) <-chan *Job {
	s := &subscriber{
		max:    m.cfg.SubscriberQueue,
		wake:   make(chan struct{}, 1),
		out:    make(chan *Job),
		onDrop: func(n int) { m.droppedJobs.Add(uint64(n)) },
	}
	m.subsMu.Lock()
	m.subs[s] = struct{}{}
	// Under subsMu, so no job is published between the snapshot and
	// registration: the subscriber sees current, then everything after.
	if cur := m.Current(); cur != nil {
		s.push(cur)
	}
	m.subsMu.Unlock()
	go func() {
		s.forward(ctx)
		m.subsMu.Lock()
		delete(m.subs, s)
		m.subsMu.Unlock()
	}()
	return s.out
}

// broadcast hands job to every subscriber without blocking.
func (m *Manager) broadcast(job *Job) {
	m.subsMu.Lock()
	defer m.subsMu.Unlock()
	for s := range m.subs {
		s.push(job)
	}
}

func (s *subscriber) push(job *Job) {
	s.mu.Lock()
	s.queue = append(s.queue, job)
	if len(s.queue) > s.max {
		clean := false
		for _, j := range s.queue {
			clean = clean || j.CleanJobs
		}
		newest := s.queue[len(s.queue)-1]
		if clean && !newest.CleanJobs {
			c := *newest
			c.CleanJobs = true
			newest = &c
		}
		dropped := len(s.queue) - 1
		s.queue = append(s.queue[:0], newest)
		if s.onDrop != nil {
			s.onDrop(dropped)
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// forward drains the queue into out until ctx is done, then closes out. It
// must be run as a goroutine owned by Subscribe.
func (s *subscriber) forward(ctx context.Context) {
	defer close(s.out)
	for {
		s.mu.Lock()
		var job *Job
		if len(s.queue) > 0 {
			job = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if job == nil {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case s.out <- job:
		case <-ctx.Done():
			return
		}
	}
}
