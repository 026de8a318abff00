package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lode-pool/lode/economics"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

type fixedTemplate economics.TemplateInfo

func (f fixedTemplate) CurrentTemplate() (economics.TemplateInfo, bool) {
	return economics.TemplateInfo(f), true
}

// lodectl economics prints the daemon's figures from the API: the overview,
// and with an address its workers, measured from shares recorded in a real
// Redis by the ledger's store.
func TestEconomicsCommand(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "ctl"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	// Ten minutes of shares of one worker, three minutes of another.
	now := time.Now()
	var entries []ledger.Entry
	for i := 1; i <= 600; i++ {
		at := now.Add(-time.Duration(i) * time.Second)
		entries = append(entries, ledger.Entry{Seq: uint64(i), Units: "1", Share: shares.Share{Worker: addrA + ".s21",
			Address: addrA, WorkerName: "s21", Difficulty: 1e6, HashDifficulty: 2e6, Time: at}})
		if i <= 180 {
			entries = append(entries, ledger.Entry{Seq: uint64(1000 + i), Units: "1", Share: shares.Share{Worker: addrB,
				Address: addrB, Difficulty: 1e5, HashDifficulty: 2e5, Time: at}})
		}
	}
	if err := s.ApplyBatch(ctx, &ledger.Batch{Instance: "ctl", Seq: 5000, Shares: entries}, "0"); err != nil {
		t.Fatal(err)
	}
	eng, err := economics.New(economics.Config{Power: economics.PowerConfig{Currency: "sat", Price: 50}}, economics.Deps{
		Params:    &chaincfg.RegressionNetParams,
		Templates: fixedTemplate{Height: 1000, Bits: 0x1d00ffff, CoinbaseValue: 5_000_000_000},
		Stats:     s.EconomicsStats(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: economics.NewHandler(eng), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	base := "http://" + ln.Addr().String()

	var out, errb bytes.Buffer
	if code := run([]string{"economics", "-api", base, addrA}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	text := out.String()
	for _, want := range []string{"hashprice (template)", "height", addrA + ".s21", "TOTAL (1)"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, addrB) {
		t.Errorf("another address's worker listed:\n%s", text)
	}
	// The worker's hashrate: 1e6 · 2³² per second over its connected time.
	snap := eng.Snapshot()
	ws := snap.WorkersOf(addrA)
	if len(ws) != 1 {
		t.Fatalf("workers of %s: %+v", addrA, ws)
	}
	h := ws[0].Hashrate[0]
	if true_ := 1e6 * 4294967296.0; !(h.Low <= true_ && true_ <= h.High) {
		t.Errorf("5 min hashrate %v [%v, %v] does not contain the true %v", h.Hashrate, h.Low, h.High, true_)
	}

	// The API down: one clear line, exit 1.
	_ = hs.Close()
	out.Reset()
	errb.Reset()
	if code := run([]string{"economics", "-api", base}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "ask the pool's API") {
		t.Fatalf("API down: exit %d, %q", code, errb.String())
	}
}
