package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// daemon wires the components of the configured roles and runs them.
type daemon struct {
	cfg     Config
	secrets Secrets
	path    string
	log     *zap.Logger
	hup     <-chan os.Signal

	// reloaders are called with the new config on SIGHUP, in order.
	reloaders []reloader
}

// component is one long-running part of the daemon. run blocks until ctx
// ends (graceful shutdown) or it fails.
type component struct {
	name string
	run  func(ctx context.Context) error
	// late components are stopped only after every other component has
	// returned: the share ledger must outlive the stratum server, whose
	// shutdown still records the shares of requests in flight.
	late bool
}

// reloader applies the reloadable part of a new config.
type reloader struct {
	name   string
	reload func(Config) error
}

// runComponents runs every component until ctx ends or one of them fails.
// Then it stops them in two waves, the others first and the late ones when
// the others have returned, all within the shutdown timeout. A failure of
// any component stops the daemon: running half a pool (say, stratum
// without its ledger) would accept shares it cannot record.
func (d *daemon) runComponents(ctx context.Context, comps []component) error {
	early, stopEarly := context.WithCancelCause(ctx)
	defer stopEarly(nil)
	late, stopLate := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLate()
	type result struct {
		c   component
		err error
	}
	results := make(chan result, len(comps))
	running := map[string]bool{}
	earlyLeft := 0
	for _, c := range comps {
		running[c.name] = true
		if !c.late {
			earlyLeft++
		}
	}
	var mu sync.Mutex
	for _, c := range comps {
		cctx := early
		if c.late {
			cctx = late
		}
		go func() {
			err := c.run(cctx)
			if err != nil && cctx.Err() == nil {
				stopEarly(fmt.Errorf("%s: %w", c.name, err))
			}
			mu.Lock()
			delete(running, c.name)
			mu.Unlock()
			results <- result{c, err}
		}()
		d.log.Info("started", zap.String("component", c.name))
	}

	var errs []error
	remaining := len(comps)
	collect := func(r result) {
		remaining--
		if !r.c.late {
			earlyLeft--
		}
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			errs = append(errs, fmt.Errorf("%s: %w", r.c.name, r.err))
		}
		d.log.Info("stopped", zap.String("component", r.c.name), zap.Error(r.err))
	}
	for early.Err() == nil && remaining > 0 {
		select {
		case <-early.Done():
		case r := <-results:
			collect(r)
		case <-d.hup:
			d.reload()
		}
	}
	stopEarly(nil)
	if cause := context.Cause(early); cause != nil && !errors.Is(cause, context.Canceled) {
		d.log.Error("component failed; shutting down", zap.Error(cause))
	} else if remaining > 0 {
		d.log.Info("shutting down", zap.Duration("deadline", d.cfg.ShutdownTimeout))
	}
	deadline := time.NewTimer(d.cfg.ShutdownTimeout)
	defer deadline.Stop()
	for remaining > 0 {
		if earlyLeft == 0 {
			stopLate()
		}
		select {
		case r := <-results:
			collect(r)
		case <-deadline.C:
			mu.Lock()
			names := make([]string, 0, len(running))
			for n := range running {
				names = append(names, n)
			}
			mu.Unlock()
			slices.Sort(names)
			return errors.Join(append(errs, fmt.Errorf("shutdown deadline %v exceeded; still running: %s",
				d.cfg.ShutdownTimeout, strings.Join(names, ", ")))...)
		}
	}
	return errors.Join(errs...)
}

// reload re-reads the config file and hands it to every reloader. A file
// that no longer validates is logged and ignored: the running config stays.
func (d *daemon) reload() {
	cfg, err := LoadConfig(d.path)
	if err != nil {
		d.log.Error("SIGHUP: config not reloaded", zap.Error(err))
		return
	}
	for _, r := range d.reloaders {
		if err := r.reload(cfg); err != nil {
			d.log.Error("SIGHUP: reload failed", zap.String("component", r.name), zap.Error(err))
			continue
		}
		d.log.Info("SIGHUP: reloaded", zap.String("component", r.name))
	}
}

// getenv and readFile are the process's environment and file system, as
// payment.LoadKey takes them.
func getenv(name string) string { return os.Getenv(name) }

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
