package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock/stocktest"
)

const e2eSecret = "e2e-secret-0123456789abcdefghijklmnopq"

// e2e is two seckill processes sharing one PostgreSQL database, one Redis key
// prefix and A's embedded NATS: A runs everything, B is a gateway only.
type e2e struct {
	t      *testing.T
	config string // absolute path of configs/seckill.yaml
	base   map[string]string
	a, b   *process
	client *http.Client
	rdb    redis.UniversalClient
	prefix string // the processes' Redis key prefix
}

func TestEndToEndTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the binary against PostgreSQL and Redis")
	}
	start := time.Now()
	e := setupE2E(t)
	t.Logf("both processes ready after %v", time.Since(start).Round(time.Millisecond))

	admin := e.token("--admin")
	const stock, buyers = 50, 300

	// Create and publish on A.
	var created api.Activity
	now := time.Now().UTC()
	status, body := e.do(e.a, "POST", "/admin/v1/activities", admin, api.CreateActivityRequest{
		Name: "e2e", StartAt: now.Add(-time.Minute), EndAt: now.Add(time.Hour),
		PayTimeoutSeconds: 900, PerUserLimit: 1,
		Items: []api.NewItem{{Name: "Phone", PriceCents: 99900, Stock: stock}},
	}, &created)
	if status != http.StatusCreated || len(created.Items) != 1 {
		t.Fatalf("create activity: %d %s", status, body)
	}
	aid, iid := created.ID.String(), created.Items[0].ID.String()
	if status, body := e.do(e.a, "POST", "/admin/v1/activities/"+aid+"/publish", admin, nil, nil); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	published := time.Now()

	// B learns about it from PostgreSQL within its catalog refresh. The probe
	// asks for more than the per-user limit: 404 while B's catalog does not
	// know the item, 400 INVALID_QUANTITY once it does; it never takes stock.
	probe := e.token("--user", "999999")
	cluster.Eventually(t, 2*time.Second, func() error {
		status, code, _ := e.buy(e.b, probe, aid, iid, 2)
		if status == http.StatusBadRequest && code == "INVALID_QUANTITY" {
			return nil
		}
		if status != http.StatusNotFound && status != http.StatusTooManyRequests {
			t.Fatalf("probe buy on B: %d %s", status, code)
		}
		return fmt.Errorf("B's catalog does not sell the item published on A (last %d %s)", status, code)
	})
	t.Logf("B sells the item %v after the publish on A", time.Since(published).Round(time.Millisecond))

	// The rush: every buyer is a distinct user, half on each process.
	tokens := e.userTokens(1000, buyers)
	type result struct {
		user, gw      int
		status        int
		code, orderID string
	}
	results := make([]result, buyers)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.a
			if i%2 == 1 {
				p = e.b
			}
			<-gate
			status, code, oid := e.buy(p, tokens[i], aid, iid, 1)
			results[i] = result{user: 1000 + i, gw: i % 2, status: status, code: code, orderID: oid}
		}()
	}
	close(gate)
	wg.Wait()

	accepted := map[string]int{} // order id -> user
	perGateway := [2]int{}
	for _, r := range results {
		switch {
		case r.status == http.StatusAccepted:
			if prev, dup := accepted[r.orderID]; dup || r.orderID == "" {
				t.Errorf("order id %q given to users %d and %d", r.orderID, prev, r.user)
			}
			accepted[r.orderID] = r.user
			perGateway[r.gw]++
		case r.status == http.StatusConflict && r.code == "SOLD_OUT":
		default:
			t.Errorf("user %d on %s: %d %s, want 202 or 409 SOLD_OUT", r.user, []string{"A", "B"}[r.gw], r.status, r.code)
		}
	}
	if len(accepted) != stock {
		t.Fatalf("%d buys accepted (A %d, B %d), want exactly %d", len(accepted), perGateway[0], perGateway[1], stock)
	}
	t.Logf("%d accepted (A %d, B %d), %d sold out", len(accepted), perGateway[0], perGateway[1], buyers-len(accepted))

	// The buys went through each gateway's batcher, and it says so.
	var scripts, trips float64
	for _, p := range []*process{e.a, e.b} {
		scripts += promValue(t, p, "seckill_buy_script_calls_total")
		trips += promValue(t, p, "seckill_buy_script_round_trips_total")
	}
	if scripts < stock || trips < 1 || trips > scripts {
		t.Fatalf("batcher metrics: %v buy scripts in %v round trips, want at least %d scripts", scripts, trips, stock)
	}

	// Different processes mint ids from different Snowflake nodes.
	nodeA, nodeB := e.a.nodeID(), e.b.nodeID()
	if nodeA == nodeB {
		t.Fatalf("A and B both leased snowflake node %s", nodeA)
	}

	// The worker in A drains the queue: every unit is a PENDING row, none is
	// left in Redis and nothing is stranded in reservations.
	var stats api.ActivityStats
	cluster.Eventually(t, 15*time.Second, func() error {
		status, body := e.do(e.a, "GET", "/admin/v1/activities/"+aid+"/stats", admin, nil, &stats)
		if status != http.StatusOK || len(stats.Items) != 1 {
			t.Fatalf("stats: %d %s", status, body)
		}
		s := stats.Items[0]
		if s.StockTotal == stock && s.Pending == stock && s.Available == 0 && s.Reserved == 0 &&
			s.Paid == 0 && s.Cancelled == 0 && s.Consistent {
			return nil
		}
		return fmt.Errorf("stats never settled: %s", body)
	})

	// Each owner sees their order through the other process, and only there:
	// the order is a PostgreSQL row both processes read.
	for oid, user := range accepted {
		other := e.b
		if (user-1000)%2 == 1 {
			other = e.a
		}
		var o api.Order
		status, body := e.do(other, "GET", "/api/v1/orders/"+oid, tokens[user-1000], nil, &o)
		if status != http.StatusOK || o.OrderID.String() != oid || o.UserID.String() != strconv.Itoa(user) || o.Status != api.OrderPending {
			t.Errorf("order %s of user %d on the other process: %d %s", oid, user, status, body)
		}
	}

	// Graceful shutdown of both at once.
	e.a.terminate()
	e.b.terminate()
	for _, p := range []*process{e.a, e.b} {
		code, err := p.waitExit(20 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", p.name, code)
		}
		if len(p.records("stopped")) != 1 {
			t.Errorf("%s did not log \"stopped\"", p.name)
		}
	}
	if keys := e.redisKeys(":node:*"); len(keys) != 0 {
		t.Errorf("node-id leases still held after shutdown: %v", keys)
	}
	t.Logf("whole run took %v", time.Since(start).Round(time.Millisecond))
}

// setupE2E starts A (serve --role=all, embedded NATS on a free port) and B
// (serve --role=gateway using A's NATS), both ready.
func setupE2E(t *testing.T) *e2e {
	t.Helper()
	seckillBinary(t) // build before the clock of any wait starts
	cfg, err := filepath.Abs(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	dsn := newDatabase(t)
	rdb, keys := stocktest.New(t) // a Redis prefix of our own, deleted at cleanup
	e := &e2e{t: t, config: cfg, rdb: rdb, prefix: keys.Prefix, client: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 200, MaxConnsPerHost: 0},
	}}
	t.Cleanup(e.client.CloseIdleConnections)
	e.base = map[string]string{
		"SECKILL_POSTGRES_DSN":     dsn,
		"SECKILL_REDIS_ADDR":       stocktest.Addr(),
		"SECKILL_REDIS_KEY_PREFIX": keys.Prefix,
		"SECKILL_AUTH_SECRET":      e2eSecret,
		"SECKILL_PAYMENT_SECRET":   e2eSecret,
		"SECKILL_LOG_LEVEL":        "info",
		"SECKILL_LOG_FORMAT":       "json",
	}
	natsPort := freePort(t)
	portA, portB := freePort(t), freePort(t)
	e.a = startProcess(t, "A", portA, e.env(map[string]string{
		"SECKILL_HTTP_ADDR":        fmt.Sprintf("127.0.0.1:%d", portA),
		"SECKILL_NATS_URL":         "",
		"SECKILL_NATS_LISTEN":      fmt.Sprintf("127.0.0.1:%d", natsPort),
		"SECKILL_NATS_DATA_DIR":    t.TempDir(),
		"SECKILL_SENTINEL_LOG_DIR": t.TempDir(),
	}), "--role=all", "--config", cfg)
	e.a.waitReady(30 * time.Second)
	e.b = startProcess(t, "B", portB, e.env(map[string]string{
		"SECKILL_HTTP_ADDR":        fmt.Sprintf("127.0.0.1:%d", portB),
		"SECKILL_NATS_URL":         fmt.Sprintf("nats://127.0.0.1:%d", natsPort),
		"SECKILL_NATS_LISTEN":      "",
		"SECKILL_NATS_DATA_DIR":    t.TempDir(),
		"SECKILL_SENTINEL_LOG_DIR": t.TempDir(),
	}), "--role=gateway", "--config", cfg)
	e.b.waitReady(30 * time.Second)
	return e
}

// env is the shared settings plus extra.
func (e *e2e) env(extra map[string]string) map[string]string {
	out := make(map[string]string, len(e.base)+len(extra))
	for k, v := range e.base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// token runs the binary's token subcommand with the shared secret.
func (e *e2e) token(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(seckillBinary(e.t), append([]string{"token", "--config", e.config}, args...)...)
	cmd.Env = childEnv(e.base)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("seckill token %v: %v\n%s", args, err, stderr.String())
	}
	tok := strings.TrimSpace(string(out))
	if strings.Count(tok, ".") != 2 {
		e.t.Fatalf("seckill token %v printed %q, not a JWT", args, tok)
	}
	return tok
}

// userTokens mints tokens for users first..first+n-1, a few at a time.
func (e *e2e) userTokens(first, n int) []string {
	e.t.Helper()
	tokens := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cmd := exec.Command(seckillBinary(e.t), "token", "--config", e.config, "--user", strconv.Itoa(first+i))
			cmd.Env = childEnv(e.base)
			out, err := cmd.Output()
			tokens[i], errs[i] = strings.TrimSpace(string(out)), err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			e.t.Fatalf("seckill token --user %d: %v", first+i, err)
		}
	}
	return tokens
}

// do sends a JSON request and decodes a JSON answer into out (when non-nil).
func (e *e2e) do(p *process, method, path, token string, in, out any) (int, string) {
	e.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, p.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s on %s: %v", method, path, p.name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s on %s: read body: %v", method, path, p.name, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s on %s: %d %s: %v", method, path, p.name, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// buy posts one buy; it is safe from many goroutines (no t.Fatal), and
// reports transport errors as status 0.
func (e *e2e) buy(p *process, token, aid, iid string, qty int) (status int, code, orderID string) {
	a, err1 := strconv.ParseInt(aid, 10, 64)
	i, err2 := strconv.ParseInt(iid, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err.Error(), ""
	}
	b, _ := json.Marshal(api.BuyRequest{ActivityID: api.ID(a), ItemID: api.ID(i), Quantity: int64(qty)})
	req, err := http.NewRequestWithContext(context.Background(), "POST", p.url+"/api/v1/seckill", bytes.NewReader(b))
	if err != nil {
		return 0, err.Error(), ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	// A 202 fills the first, an error the second.
	var out struct {
		api.BuyAccepted
		api.ErrorResponse
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		return resp.StatusCode, "unparseable body " + strconv.Quote(string(raw)), ""
	}
	if out.OrderID != 0 {
		orderID = out.OrderID.String()
	}
	if resp.StatusCode == http.StatusAccepted && out.Status != api.OrderPending {
		return resp.StatusCode, "status " + out.Status, orderID
	}
	return resp.StatusCode, out.Error.Code, orderID
}

// nodeID returns the snowflake node id the process logged it leased.
func (p *process) nodeID() string {
	p.t.Helper()
	recs := p.records("snowflake node leased")
	if len(recs) != 1 {
		p.t.Fatalf("%s logged \"snowflake node leased\" %d times, want 1", p.name, len(recs))
	}
	n, ok := recs[0]["node"].(float64)
	if !ok {
		p.t.Fatalf("%s: snowflake node record without a numeric node: %v", p.name, recs[0])
	}
	return strconv.FormatFloat(n, 'f', -1, 64)
}

// redisKeys lists the keys under the test's prefix matching pattern.
func (e *e2e) redisKeys(pattern string) []string {
	e.t.Helper()
	ctx := context.Background()
	var keys []string
	iter := e.rdb.Scan(ctx, 0, e.prefix+pattern, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		e.t.Fatalf("redis SCAN %s%s: %v", e.prefix, pattern, err)
	}
	return keys
}

// promValue reads one unlabelled series from a process's /metrics.
func promValue(t *testing.T, p *process, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, line, err)
			}
			return f
		}
	}
	t.Fatalf("%s has no series %s", p.url, name)
	return 0
}
