package redisstore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares/ledger"
)

// A single-mode address "unix:///path" reaches Redis over its Unix socket,
// and share batches go through it; a relative path is refused.
func TestConnectUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "redis.sock")
	testenv.StartRedis(t, "--unixsocket", sock, "--unixsocketperm", "700")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: redisstore.UnixScheme + sock, Prefix: "u"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	// Redis marks a client connected over its Unix socket with flag U.
	info, err := s.Client().Do(ctx, "CLIENT", "INFO").Text()
	if err != nil {
		t.Fatal(err)
	}
	if _, flags, _ := strings.Cut(info, " flags="); !strings.Contains(strings.Fields(flags)[0], "U") {
		t.Fatalf("not a Unix socket client: %s", info)
	}
	b := &ledger.Batch{Instance: "i", Seq: 10, Shares: []ledger.Entry{entry(1, "addrU", "100000000")}}
	if err := s.ApplyBatch(ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	total, err := s.RoundTotal(ctx)
	if err != nil || total != "100000000" {
		t.Fatalf("round total over the socket: %q %v", total, err)
	}
	if _, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: "unix://relative.sock"}); err == nil {
		t.Fatal("relative socket path accepted")
	}
}
