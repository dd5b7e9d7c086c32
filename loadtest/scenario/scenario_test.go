package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestScenarios runs a tiny version of every scenario against the real
// binary, so the load tests cannot rot: each must pass its whole
// verification, and the rush must sell exactly its stock.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the seckill binary against PostgreSQL and Redis")
	}
	gw := startGateway(t)
	cases := []struct {
		name string
		tune func(*Config)
	}{
		{"rush", func(c *Config) { c.Rate, c.Duration, c.Stock = 300, time.Second, 50 }},
		{"steady", func(c *Config) { c.Rate, c.Duration = 200, time.Second }},
		{"lifecycle", func(c *Config) {
			c.Rate, c.Duration, c.PayTimeout = 100, time.Second, 2*time.Second
		}},
		// Default stock (half the buyers): it sells out while resends are
		// still coming, so R3 checks that a resend after the sell-out still
		// gets its order back.
		{"retry", func(c *Config) { c.Rate, c.Duration = 300, time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := gw.config(t, tc.name)
			tc.tune(&cfg)
			cfg, err := prepare(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var report bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			res, err := runScenario(ctx, cfg, &report, cluster.TestLog(t))
			if err != nil {
				t.Fatalf("run: %v\n%s", err, report.String())
			}
			if failed := res.Failed(); len(failed) > 0 {
				t.Fatalf("failed: %s\n%s", strings.Join(failed, "; "), report.String())
			}
			if tc.name == "rush" && int64(res.Accepted) != cfg.Stock {
				t.Fatalf("rush accepted %d orders, want exactly the stock %d\n%s", res.Accepted, cfg.Stock, report.String())
			}
			for _, f := range []string{"plot.html", "report.txt"} {
				if st, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil || st.Size() == 0 {
					t.Errorf("%s not written: %v", f, err)
				}
			}
			if n := countResults(t, filepath.Join(cfg.Out, "results.bin")); n != res.Requests {
				t.Errorf("results.bin holds %d results, want %d", n, res.Requests)
			}
			if testing.Verbose() {
				t.Log("\n" + report.String())
			}
			t.Logf("%s: %d orders accepted, %d checks passed", tc.name, res.Accepted, len(res.Checks))
		})
	}
}

// countResults decodes vegeta's binary results file, as `vegeta report` would.
func countResults(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	n := 0
	for {
		var r vegeta.Result
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("%s: result %d: %v", path, n, err)
		}
		n++
	}
}

// TestConfigRefusesRemoteTargets: the load generator only shoots at loopback.
func TestConfigRefusesRemoteTargets(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:8080", "http://example.com", "ftp://127.0.0.1", "127.0.0.1:8080"} {
		if err := loopbackOnly(u); err == nil {
			t.Errorf("loopbackOnly(%q) accepted it", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:8080", "https://127.0.0.2"} {
		if err := loopbackOnly(u); err != nil {
			t.Errorf("loopbackOnly(%q): %v", u, err)
		}
	}
}

// TestFlags: a flag beats the environment, which beats the default, and the
// scenario fills what is left at zero.
func TestFlags(t *testing.T) {
	env := map[string]string{"SECKILL_REDIS_KEY_PREFIX": "envprefix", "SECKILL_AUTH_SECRET": testSecret}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := parseFlags("retry", []string{"--rate", "100", "--duration", "2s", "--redis-addr", "127.0.0.1:7000"}, io.Discard, lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		RedisPrefix: "envprefix", RedisAddr: "127.0.0.1:7000", AuthSecret: testSecret, PaymentSecret: devSecret,
		BaseURL: "http://127.0.0.1:8080", Rate: 100, Duration: 2 * time.Second,
		Users: 80, Stock: 40, Limit: 2, PayTimeout: 900 * time.Second,
	}
	got := Config{
		RedisPrefix: cfg.RedisPrefix, RedisAddr: cfg.RedisAddr, AuthSecret: cfg.AuthSecret, PaymentSecret: cfg.PaymentSecret,
		BaseURL: cfg.BaseURL, Rate: cfg.Rate, Duration: cfg.Duration,
		Users: cfg.Users, Stock: cfg.Stock, Limit: cfg.Limit, PayTimeout: cfg.PayTimeout,
	}
	if got != want {
		t.Errorf("parseFlags:\n got %+v\nwant %+v", got, want)
	}
	if _, err := parseFlags("rush", []string{"--rate", "0", "--pay-share", "0.9", "--cancel-share", "0.2"}, io.Discard, lookup); err == nil {
		t.Error("shares summing to 1.1 were accepted")
	}
}

const testSecret = "loadtest-secret-0123456789abcdefghijkl"

// testGateway is one `seckill serve --role=all` with a database, a Redis key
// prefix and an embedded NATS of its own.
type testGateway struct {
	url, dsn, prefix string
}

// config is a scenario's settings against the gateway, output in a temp dir.
func (g *testGateway) config(t *testing.T, scenario string) Config {
	return Config{
		Scenario: scenario, BaseURL: g.url, AuthSecret: testSecret, PaymentSecret: testSecret,
		PostgresDSN: g.dsn, RedisAddr: stocktest.Addr(), RedisPrefix: g.prefix,
		PayShare: 0.4, CancelShare: 0.3, AbandonShare: 0.1, AbandonAfter: time.Millisecond,
		Timeout: 5 * time.Second, MaxInFlight: 200, DrainTimeout: 15 * time.Second, Seed: 1,
		Out: t.TempDir(),
	}
}

// startGateway builds the binary and starts it with short worker intervals;
// t.Cleanup stops it, then drops its database and deletes its keys.
func startGateway(t *testing.T) *testGateway {
	t.Helper()
	_, keys := stocktest.New(t) // a prefix of our own, deleted at cleanup
	dsn := ordertest.NewDatabase(t, "seckill_loadtest")
	natsPort, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	// The built-in defaults (which configs/seckill.yaml must document, see
	// cmd/seckill's config test) plus env: no file to fall out of step with the binary.
	p := cluster.PrepareSeckill(t, cluster.SeckillOptions{Bin: seckillBin(t), Args: []string{"--role=all"}, Out: &log,
		Env: map[string]string{
			"SECKILL_POSTGRES_DSN":           dsn,
			"SECKILL_REDIS_ADDR":             stocktest.Addr(),
			"SECKILL_REDIS_KEY_PREFIX":       keys.Prefix,
			"SECKILL_NATS_URL":               "",
			"SECKILL_NATS_LISTEN":            fmt.Sprintf("127.0.0.1:%d", natsPort),
			"SECKILL_NATS_DATA_DIR":          t.TempDir(),
			"SECKILL_SENTINEL_LOG_DIR":       t.TempDir(),
			"SECKILL_SENTINEL_USER_QPS":      "1000",
			"SECKILL_AUTH_SECRET":            testSecret,
			"SECKILL_PAYMENT_SECRET":         testSecret,
			"SECKILL_WORKER_RECONCILE_GRACE": "2s",
			"SECKILL_WORKER_SWEEP_INTERVAL":  "1s",
			"SECKILL_LOG_LEVEL":              "warn",
			"SECKILL_LOG_FORMAT":             "text",
		}})
	t.Cleanup(func() {
		if err := p.Stop(15 * time.Second); err != nil {
			t.Log(err)
		}
		if t.Failed() {
			t.Logf("---- seckill log ----\n%s", log.String())
		}
	})
	if err := p.Restart(context.Background()); err != nil {
		t.Fatalf("%v:\n%s", err, log.String())
	}
	return &testGateway{url: p.URL, dsn: dsn, prefix: keys.Prefix}
}

// seckillBin is $SECKILL_LOADTEST_BIN, a binary built beforehand, or this
// tree's, built once per test run.
func seckillBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("SECKILL_LOADTEST_BIN"); bin != "" {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := cluster.SeckillBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.RemoveBinaries()
	os.Exit(code)
}

// lockedBuffer is the child's log, written by exec's copier goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
