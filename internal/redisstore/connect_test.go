package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
)

func TestConnectUnreachable(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	srv.Stop()
	cfg := redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "t", DialTimeout: time.Second}

	// By default a Redis that is down fails the start.
	if s, err := redisstore.Connect(ctx, cfg); err == nil || s != nil || errors.Is(err, redisstore.ErrUnreachable) {
		t.Fatalf("Connect to a stopped Redis: store %v, err %v", s, err)
	}
	cfg.AllowUnreachable = true
	s, err := redisstore.Connect(ctx, cfg)
	if !errors.Is(err, redisstore.ErrUnreachable) || s == nil {
		t.Fatalf("AllowUnreachable: store %v, err %v", s, err)
	}
	defer s.Client().Close()
	// The same Store works once Redis is up.
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store never reached the restarted Redis")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A Redis that answers with an error is a configuration mistake, reachable
// or not: no Store.
func TestConnectWrongPassword(t *testing.T) {
	srv := testenv.StartRedis(t, "--requirepass", "right")
	for _, allow := range []bool{false, true} {
		s, err := redisstore.Connect(context.Background(), redisstore.ConnectConfig{
			Addr: srv.Addr, Password: "wrong", AllowUnreachable: allow,
		})
		if err == nil || s != nil || errors.Is(err, redisstore.ErrUnreachable) {
			t.Fatalf("allow=%v: store %v, err %v", allow, s, err)
		}
	}
	s, err := redisstore.Connect(context.Background(), redisstore.ConnectConfig{Addr: srv.Addr, Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	s.Client().Close()
}
