package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/lode-pool/lode/economics"
)

func init() {
	register("economics", "hashprice, retarget and prices; with an address its workers' hashrate, revenue, cost, margin and advice (API)", runEconomics)
}

// runEconomics prints GET /api/v1/economics, and with an address argument
// GET /api/v1/economics/workers?address= as tables (economics.WriteOverview,
// WriteWorkers). The figures come from the daemon's engine: lodectl asks
// the API named by -api, or api.listen of the config.
func runEconomics(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("economics", flag.ContinueOnError)
	fs.SetOutput(stderr)
	st := newSettings(fs)
	apiURL := fs.String("api", "", "the pool's API base URL (default: http://<api.listen of the config>)")
	window := fs.String("window", "1h", "hashrate window of the workers table: 5m, 1h or 24h")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "usage: lodectl economics [flags] [address]")
		return 2
	}
	wi := map[string]int{"5m": 0, "1h": 1, "24h": 2}
	win, ok := wi[*window]
	if !ok {
		fmt.Fprintf(stderr, "lodectl economics: -window %q: want 5m, 1h or 24h\n", *window)
		return 2
	}
	if err := st.load(); err != nil {
		fmt.Fprintf(stderr, "lodectl economics: %v\n", err)
		return 1
	}
	base := *apiURL
	if base == "" {
		base = apiBase(st.cfg.API.Listen)
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.timeout)
	defer cancel()
	client := &http.Client{}
	var o economics.Overview
	if err := getJSON(ctx, client, base+"/api/v1/economics", &o); err != nil {
		fmt.Fprintf(stderr, "lodectl economics: %v\n", err)
		return 1
	}
	if err := economics.WriteOverview(stdout, o); err != nil {
		return 1
	}
	if fs.NArg() == 1 {
		var a economics.WorkersAnswer
		if err := getJSON(ctx, client, base+"/api/v1/economics/workers?address="+url.QueryEscape(fs.Arg(0)), &a); err != nil {
			fmt.Fprintf(stderr, "lodectl economics: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout)
		if err := economics.WriteWorkers(stdout, a, win); err != nil {
			return 1
		}
	}
	return 0
}

// apiBase turns api.listen into a URL to reach it from this host.
func apiBase(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// getJSON GETs u into v; an error answer is returned with the API's
// message.
func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask the pool's API: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", u, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", res.Status, e.Error)
		}
		return fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", u, err)
	}
	return nil
}
