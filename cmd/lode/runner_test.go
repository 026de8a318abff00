package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func testDaemon(t *testing.T, shutdown time.Duration) *daemon {
	cfg := Defaults()
	cfg.ShutdownTimeout = shutdown
	return &daemon{cfg: cfg, log: zaptest.NewLogger(t)}
}

// waitCtx is a component that runs until its context ends.
func waitCtx(ctx context.Context) error { <-ctx.Done(); return nil }

func TestRunComponents(t *testing.T) {
	t.Run("cancel stops all", func(t *testing.T) {
		d := testDaemon(t, 5*time.Second)
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{}, 2)
		comp := func(ctx context.Context) error { started <- struct{}{}; <-ctx.Done(); return nil }
		done := make(chan error, 1)
		go func() { done <- d.runComponents(ctx, []component{{name: "a", run: comp}, {name: "b", run: comp}}) }()
		<-started
		<-started
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("clean stop returned %v", err)
		}
	})
	t.Run("a failure stops the rest", func(t *testing.T) {
		d := testDaemon(t, 5*time.Second)
		boom := errors.New("boom")
		err := d.runComponents(t.Context(), []component{
			{name: "healthy", run: waitCtx},
			{name: "broken", run: func(context.Context) error { return boom }},
		})
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "broken: boom") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("shutdown deadline names the laggard", func(t *testing.T) {
		d := testDaemon(t, 50*time.Millisecond)
		ctx, cancel := context.WithCancel(t.Context())
		release := make(chan struct{})
		defer close(release)
		done := make(chan error, 1)
		go func() {
			done <- d.runComponents(ctx, []component{
				{name: "quick", run: waitCtx},
				{name: "stuck", run: func(context.Context) error { <-release; return nil }},
			})
		}()
		cancel()
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "still running: stuck") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("late components stop after the others", func(t *testing.T) {
		d := testDaemon(t, 5*time.Second)
		ctx, cancel := context.WithCancel(t.Context())
		frontStopped := make(chan struct{})
		lateSawFront := make(chan bool, 1)
		front := func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // a graceful shutdown still using the ledger
			close(frontStopped)
			return nil
		}
		ledger := func(ctx context.Context) error {
			<-ctx.Done()
			select {
			case <-frontStopped:
				lateSawFront <- true
			default:
				lateSawFront <- false
			}
			return nil
		}
		done := make(chan error, 1)
		go func() {
			done <- d.runComponents(ctx, []component{{name: "ledger", run: ledger, late: true}, {name: "stratum", run: front}})
		}()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !<-lateSawFront {
			t.Error("the late component was stopped before the stratum component returned")
		}
	})
	t.Run("a failing late component stops everything", func(t *testing.T) {
		d := testDaemon(t, 5*time.Second)
		boom := errors.New("redis gone and spool full")
		err := d.runComponents(t.Context(), []component{
			{name: "stratum", run: waitCtx},
			{name: "ledger", run: func(context.Context) error { return boom }, late: true},
		})
		if !errors.Is(err, boom) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("components that end on their own", func(t *testing.T) {
		d := testDaemon(t, time.Second)
		err := d.runComponents(t.Context(), []component{{name: "oneshot", run: func(context.Context) error { return nil }}})
		if err != nil {
			t.Fatal(err)
		}
	})
}
