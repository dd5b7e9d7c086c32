package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestEndToEndNATSNodeLoss: two gateways and a worker on a 3-node NATS
// cluster (nats.replicas 3). Buyers arrive at a steady rate; two seconds in,
// the node leading the order stream is killed with kill -9. Buyers see 202
// or 503 UNAVAILABLE, nothing else; 202s come back within 30 s (the time is
// logged, with the 503s meanwhile); every 202 is exactly one row, and every
// unit a 503'd buy reserved becomes an order through the reconciler, so the
// item's books balance; and most buys during the leader election are
// refused before they reserve a unit (Broker.Connected holds the stream).
func TestEndToEndNATSNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the binary on a NATS cluster")
	}
	seckillBinary(t)
	cfg, err := filepath.Abs(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	rdb, keys := stocktest.New(t)
	natsc := cluster.NewNATSCluster(t, 3)
	dsn := newDatabase(t)
	e := &e2e{t: t, config: cfg, rdb: rdb, prefix: keys.Prefix, client: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 200},
	}}
	t.Cleanup(e.client.CloseIdleConnections)
	e.base = map[string]string{
		"SECKILL_POSTGRES_DSN":     dsn,
		"SECKILL_REDIS_ADDR":       stocktest.Addr(),
		"SECKILL_REDIS_KEY_PREFIX": keys.Prefix,
		"SECKILL_NATS_URL":         natsc.URLs(),
		"SECKILL_NATS_REPLICAS":    "3",
		"SECKILL_AUTH_SECRET":      e2eSecret,
		"SECKILL_PAYMENT_SECRET":   e2eSecret,
		"SECKILL_LOG_LEVEL":        "info",
		"SECKILL_LOG_FORMAT":       "json",
		// Reservations of 503'd buys become orders soon after the fault.
		"SECKILL_WORKER_RECONCILE_INTERVAL": "200ms",
		"SECKILL_WORKER_RECONCILE_GRACE":    "1s",
	}
	var procs []*process
	for i, role := range []string{"gateway", "gateway", "worker"} {
		procs = append(procs, startProcess(t, fmt.Sprintf("%s-%d", role, i+1), freePort(t), e.env(map[string]string{
			"SECKILL_SENTINEL_LOG_DIR": t.TempDir(),
			"SECKILL_NATS_DATA_DIR":    t.TempDir(),
		}), "--role="+role, "--config", cfg))
	}
	for _, p := range procs {
		p.waitReady(60 * time.Second)
	}
	gateways := procs[:2]

	const units = 100000
	auth := gateway.NewAuth(e2eSecret)
	admin, err := auth.Mint("admin", gateway.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var act api.Activity
	now := time.Now().UTC()
	status, body := e.do(gateways[0], "POST", "/admin/v1/activities", admin, api.CreateActivityRequest{
		Name: "nats-loss", StartAt: now.Add(-time.Minute), EndAt: now.Add(time.Hour),
		PayTimeoutSeconds: 900, PerUserLimit: 1,
		Items: []api.NewItem{{Name: "phone", PriceCents: 100, Stock: units}},
	}, &act)
	if status != http.StatusCreated {
		t.Fatalf("create activity: %d %s", status, body)
	}
	aid, iid := act.ID.String(), act.Items[0].ID.String()
	if status, body := e.do(gateways[0], "POST", "/admin/v1/activities/"+aid+"/publish", admin, nil, nil); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	for _, g := range gateways {
		cluster.Eventually(t, 5*time.Second, func() bool {
			status, code, _ := e.buy(g, mustToken(t, auth, 1), aid, iid, 2)
			return status == http.StatusBadRequest && code == "INVALID_QUANTITY"
		})
	}

	// The victim: the node leading the order stream.
	victim := streamLeader(t, natsc.URLs(), "SECKILL_ORDERS")
	var killed *cluster.NATS
	for i, n := range natsc.Nodes {
		if fmt.Sprintf("nats-%d", i+1) == victim {
			killed = n
		}
	}
	if killed == nil {
		t.Fatalf("order stream led by %q, not a node of the cluster", victim)
	}

	// Buyers at a steady 250 per second (distinct users), alternating
	// gateways, until 3 s after buys succeed again (at most 45 s).
	type buyResult struct {
		sent, answered time.Time
		status         int
		code, order    string
	}
	var (
		mu      sync.Mutex
		results []buyResult
		wg      sync.WaitGroup
	)
	var killAt time.Time
	firstOK := func() (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		var first time.Time
		for _, r := range results {
			if r.status == http.StatusAccepted && r.sent.After(killAt) && (first.IsZero() || r.answered.Before(first)) {
				first = r.answered
			}
		}
		return first.Sub(killAt), !first.IsZero()
	}
	start := time.Now()
	tick := time.NewTicker(4 * time.Millisecond)
	defer tick.Stop()
	sem := make(chan struct{}, 256)
	var recovered time.Duration
	for user := int64(10); ; user++ {
		<-tick.C
		if killAt.IsZero() && time.Since(start) > 2*time.Second {
			if err := killed.Kill(); err != nil {
				t.Fatal(err)
			}
			killAt = time.Now()
		}
		if !killAt.IsZero() {
			if d, ok := firstOK(); ok && recovered == 0 {
				recovered = d
			}
			if recovered > 0 && time.Since(killAt) > recovered+3*time.Second || time.Since(start) > 45*time.Second {
				break
			}
		}
		tok := mustToken(t, auth, user)
		g := gateways[user%2]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			sent := time.Now()
			status, code, oid := e.buy(g, tok, aid, iid, 1)
			mu.Lock()
			results = append(results, buyResult{sent: sent, answered: time.Now(), status: status, code: code, order: oid})
			mu.Unlock()
		}()
	}
	wg.Wait()
	if recovered == 0 || recovered > 30*time.Second {
		t.Fatalf("no 202 within 30s of killing %s (ran %v after it)", victim, time.Since(killAt))
	}

	accepted := map[string]bool{}
	counts := map[string]int{}
	var unavailableAfterKill int
	for _, r := range results {
		key := strconv.Itoa(r.status)
		if r.status != http.StatusAccepted {
			key += " " + r.code
		}
		counts[key]++
		switch {
		case r.status == http.StatusAccepted:
			if accepted[r.order] || r.order == "" {
				t.Fatalf("order id %q answered twice", r.order)
			}
			accepted[r.order] = true
		case r.status == http.StatusServiceUnavailable && r.code == "UNAVAILABLE":
			if r.sent.After(killAt) {
				unavailableAfterKill++
			}
		default:
			t.Errorf("buy: %d %s, want 202 or 503 UNAVAILABLE", r.status, r.code)
		}
	}

	// The books balance: nothing reserved or lost, every sold unit a row.
	var stats api.ActivityStats
	cluster.Eventually(t, 60*time.Second, func() error {
		status, body := e.do(gateways[1], "GET", "/admin/v1/activities/"+aid+"/stats", admin, nil, &stats)
		if status != http.StatusOK {
			return fmt.Errorf("stats: %d %s", status, body)
		}
		s := stats.Items[0]
		if !s.Consistent || s.Reserved != 0 || s.Pending != units-s.Available {
			return fmt.Errorf("not settled: %s", body)
		}
		return nil
	})
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows := orderRows(t, pool, act.ID)
	for oid := range accepted {
		if _, ok := rows[oid]; !ok {
			t.Errorf("accepted order %s has no row", oid)
		}
	}
	sold := int64(len(rows))
	if s := stats.Items[0]; s.Pending != sold {
		t.Errorf("%d rows, %d units pending", sold, s.Pending)
	}
	// Without the broker's hold of a leaderless stream every one of those
	// 503s reserved a unit (measured: 1020 of 1020); with it most are
	// refused before the buy script (measured: 256 of 1188).
	if taken := sold - int64(len(accepted)); unavailableAfterKill > 0 && float64(taken) > 0.75*float64(unavailableAfterKill) {
		t.Errorf("%d of %d buys answered 503 after the kill reserved a unit; the leaderless stream was not held", taken, unavailableAfterKill)
	}
	t.Logf("NATS node loss through the gateways: killed %s (order stream leader); first 202 %v after kill -9 "+
		"(%d buys sent, answers %v); %d answered 503 after the kill; units reserved by 503'd buys and turned into orders by the reconciler: %d",
		victim, recovered.Round(time.Millisecond), len(results), counts, unavailableAfterKill, sold-int64(len(accepted)))
}

// mustToken mints a user's token in-process (the token subcommand's code).
func mustToken(t *testing.T, auth *gateway.Auth, user int64) string {
	tok, err := auth.Mint(strconv.FormatInt(user, 10), "", time.Hour)
	if err != nil {
		t.Error(err)
	}
	return tok
}

// streamLeader names the server leading a stream.
func streamLeader(t *testing.T, urls, stream string) string {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.Cluster.Leader
}
