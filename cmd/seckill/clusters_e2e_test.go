package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestEndToEndManyProcesses runs the binary as 3 gateways and 2 workers on a
// 3-node NATS cluster (nats.replicas 3) and PostgreSQL, on a single Redis
// and on a Redis Cluster of 3 masters and 3 replicas. An activity with
// items spread over the Redis shards is sold out through every gateway;
// some orders are paid, the rest time out, and one item's Redis state is
// lost and rebuilt on the way. Checked:
//
//   - no oversell, no undersell: exactly the stock is accepted (202);
//   - every 202 is exactly one row, persisted by the two workers through
//     one shared durable consumer;
//   - the gateways lease distinct Snowflake nodes, and every order id
//     carries the node of the gateway that answered it;
//   - one semaphore for all gateways;
//   - timeouts cancel each unpaid order once, never early, and its unit
//     comes back exactly once, with the sweepers, reconcilers and
//     recoveries of both workers racing the timers;
//   - every process stops cleanly on SIGTERM.
func TestEndToEndManyProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the binary on a NATS cluster (and a Redis Cluster)")
	}
	for _, tc := range []struct {
		name         string
		redisCluster bool
	}{
		{"single-redis", false},
		{"redis-cluster", true},
	} {
		t.Run(tc.name, func(t *testing.T) { runManyProcesses(t, tc.redisCluster) })
	}
}

// topology is what the processes run on.
type topology struct {
	redisAddr string
	rdb       redis.UniversalClient
	prefix    string
	masters   []*redis.Client // the Redis Cluster's masters; nil on a single Redis
	natsURLs  string
	dsn       string
}

func startTopology(t *testing.T, redisCluster bool) topology {
	t.Helper()
	var top topology
	if redisCluster {
		rc := cluster.NewRedisCluster(t, 3, 1)
		top.redisAddr = strings.Join(rc.Addrs(), ",")
		cc := rc.Client()
		t.Cleanup(func() { cc.Close() })
		top.rdb, top.prefix = cc, "sk"
		ctx := context.Background()
		var mu sync.Mutex // ForEachMaster calls on every master at once
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			top.masters = append(top.masters, redis.NewClient(&redis.Options{Addr: m.Options().Addr}))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(top.masters) != 3 {
			t.Fatalf("%d masters, want 3", len(top.masters))
		}
		for _, m := range top.masters {
			t.Cleanup(func() { m.Close() })
		}
	} else {
		rdb, keys := stocktest.New(t)
		top.redisAddr, top.rdb, top.prefix = stocktest.Addr(), rdb, keys.Prefix
	}
	top.natsURLs = cluster.NewNATSCluster(t, 3).URLs()
	top.dsn = newDatabase(t)
	return top
}

func runManyProcesses(t *testing.T, redisCluster bool) {
	seckillBinary(t) // build before the clock of any wait starts
	start := time.Now()
	top := startTopology(t, redisCluster)
	cfg, err := filepath.Abs(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, config: cfg, rdb: top.rdb, prefix: top.prefix, client: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 200},
	}}
	t.Cleanup(e.client.CloseIdleConnections)
	e.base = map[string]string{
		"SECKILL_POSTGRES_DSN":     top.dsn,
		"SECKILL_REDIS_ADDR":       top.redisAddr,
		"SECKILL_REDIS_KEY_PREFIX": top.prefix,
		// A replica's ack that a loaded test machine can delay past the
		// 50 ms default; still below the 500 ms read timeout.
		"SECKILL_REDIS_WAIT_TIMEOUT": "400ms",
		"SECKILL_NATS_URL":           top.natsURLs,
		"SECKILL_NATS_REPLICAS":      "3",
		"SECKILL_AUTH_SECRET":        e2eSecret,
		"SECKILL_PAYMENT_SECRET":     e2eSecret,
		"SECKILL_LOG_LEVEL":          "info",
		"SECKILL_LOG_FORMAT":         "json",
		// The safety nets race the timers and each other on both workers:
		// sweepers close what is a millisecond overdue, reconcilers insert
		// what has waited a second, recoveries look every 200 ms.
		"SECKILL_WORKER_SWEEP_INTERVAL":     "200ms",
		"SECKILL_WORKER_SWEEP_GRACE":        "1ms",
		"SECKILL_WORKER_RECONCILE_INTERVAL": "200ms",
		"SECKILL_WORKER_RECONCILE_GRACE":    "1s",
		"SECKILL_WORKER_RECOVERY_INTERVAL":  "200ms",
		"SECKILL_WORKER_RECOVERY_SETTLE":    "2s",
	}
	var gateways, workers []*process
	for i := range 5 {
		role, name := "gateway", fmt.Sprintf("gw-%d", i+1)
		if i >= 3 {
			role, name = "worker", fmt.Sprintf("wk-%d", i-2)
		}
		p := startProcess(t, name, freePort(t), e.env(map[string]string{
			"SECKILL_SENTINEL_LOG_DIR": t.TempDir(),
			"SECKILL_NATS_DATA_DIR":    t.TempDir(),
		}), "--role="+role, "--config", cfg)
		if role == "gateway" {
			gateways = append(gateways, p)
		} else {
			workers = append(workers, p)
		}
	}
	// All five start at once: migrations, streams and consumers are
	// created concurrently.
	for _, p := range append(append([]*process{}, gateways...), workers...) {
		p.waitReady(60 * time.Second)
	}
	t.Logf("3 gateways and 2 workers ready %v after the start", time.Since(start).Round(time.Millisecond))

	// The streams are replicated on the three NATS nodes.
	checkStreams(t, top.natsURLs)

	// An activity whose items land on every Redis shard.
	// The payment window leaves room for the rebuild below before the
	// payments.
	const items, perItem, payTimeout = 9, 12, 15
	admin := e.token("--admin")
	var act api.Activity
	now := time.Now().UTC()
	newItems := make([]api.NewItem, items)
	for i := range newItems {
		newItems[i] = api.NewItem{Name: fmt.Sprintf("item-%d", i), PriceCents: int64(100 * (i + 1)), Stock: perItem}
	}
	status, body := e.do(gateways[0], "POST", "/admin/v1/activities", admin, api.CreateActivityRequest{
		Name: "many", StartAt: now.Add(-time.Minute), EndAt: now.Add(time.Hour),
		PayTimeoutSeconds: payTimeout, PerUserLimit: 1, Items: newItems,
	}, &act)
	if status != http.StatusCreated || len(act.Items) != items {
		t.Fatalf("create activity: %d %s", status, body)
	}
	aid := act.ID.String()
	if status, body := e.do(gateways[1], "POST", "/admin/v1/activities/"+aid+"/publish", admin, nil, nil); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	if redisCluster {
		checkSpread(t, top, act)
	}
	// Every gateway's catalog sells every item before the rush (a probe
	// for more than the limit: 404 until known, then 400).
	probe := e.token("--user", "999999")
	for _, g := range gateways {
		for _, it := range act.Items {
			cluster.Eventually(t, 5*time.Second, func() bool {
				status, code, _ := e.buy(g, probe, aid, it.ID.String(), 2)
				return status == http.StatusBadRequest && code == "INVALID_QUANTITY"
			})
		}
	}

	// The rush: twice the stock in buyers, each buying one unit of one item
	// through one of the gateways.
	units := items * perItem
	buyers := 2 * units
	tokens := e.userTokens(1000, buyers)
	type result struct {
		gw          int
		item        string
		status      int
		code, order string
		answeredAt  time.Time
		user        int
	}
	results := make([]result, buyers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 48)
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			gw, it := i%len(gateways), act.Items[i%items].ID.String()
			status, code, oid := e.buy(gateways[gw], tokens[i], aid, it, 1)
			results[i] = result{gw: gw, item: it, status: status, code: code, order: oid, answeredAt: time.Now(),
				user: 1000 + i}
		}()
	}
	wg.Wait()
	accepted := map[string]result{}
	perItemSold := map[string]int{}
	perGateway := make([]int, len(gateways))
	for _, r := range results {
		switch {
		case r.status == http.StatusAccepted:
			if _, dup := accepted[r.order]; dup || r.order == "" {
				t.Fatalf("order id %q answered twice", r.order)
			}
			accepted[r.order] = r
			perItemSold[r.item]++
			perGateway[r.gw]++
		case r.status == http.StatusConflict && r.code == "SOLD_OUT":
		default:
			t.Errorf("user %d on gw-%d: %d %s, want 202 or 409 SOLD_OUT", r.user, r.gw+1, r.status, r.code)
		}
	}
	for _, it := range act.Items {
		if n := perItemSold[it.ID.String()]; n != perItem {
			t.Errorf("item %s: %d accepted, want exactly its stock %d", it.ID, n, perItem)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d accepted (per gateway %v) of %d buyers", len(accepted), perGateway, buyers)

	// Distinct Snowflake nodes, and each order id carries the node of the
	// gateway that answered it.
	nodes := map[string]int{}
	for i, g := range gateways {
		n := g.nodeID()
		if prev, dup := nodes[n]; dup {
			t.Fatalf("gw-%d and gw-%d leased the same snowflake node %s", prev+1, i+1, n)
		}
		nodes[n] = i
	}
	for oid, r := range accepted {
		id, err := strconv.ParseInt(oid, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		node := strconv.FormatInt((id>>12)&0x3ff, 10) // bwmarrin/snowflake: 10 node bits above 12 step bits
		if gw, ok := nodes[node]; !ok || gw != r.gw {
			t.Errorf("order %s answered by gw-%d carries node %s (leases %v)", oid, r.gw+1, node, nodes)
		}
	}
	if keys := e.clusterKeys(t, top, ":node:*"); len(keys) != len(gateways) {
		t.Errorf("node leases in Redis: %v, want one per gateway", keys)
	}
	// One semaphore: every gateway leases from the same two keys.
	if keys := e.clusterKeys(t, top, ":*sem*"); len(keys) != 2 {
		t.Errorf("semaphore keys %v, want one holders hash and one lease set", keys)
	}

	// Every 202 becomes exactly one row; the workers drain the stream.
	pool, err := pgxpool.New(context.Background(), top.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cluster.Eventually(t, 30*time.Second, func() error { return e.settled(gateways[2], admin, aid, 0, 0) })
	rows := orderRows(t, pool, act.ID)
	if len(rows) != len(accepted) {
		t.Fatalf("%d rows for %d accepted orders", len(rows), len(accepted))
	}
	for oid := range accepted {
		if _, ok := rows[oid]; !ok {
			t.Errorf("accepted order %s has no row", oid)
		}
	}
	checkPersisterConsumer(t, top.natsURLs)

	// One item's Redis state is lost: the recoveries of both workers see
	// it, one rebuild restores it from PostgreSQL (0 available, its buyers
	// counted), and buying it again is refused by the per-user limit.
	lost := act.Items[0]
	if err := top.rdb.Del(context.Background(), fmt.Sprintf("%s:{a:%s:i:%s}:item", top.prefix, aid, lost.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, func() error { return e.settled(gateways[0], admin, aid, 0, 0) })
	rebuilt := 0
	for _, w := range workers {
		rebuilt += len(w.records("rebuilt lost Redis state from PostgreSQL"))
	}
	if rebuilt == 0 {
		t.Fatal("no worker logged a rebuild of the lost item")
	}

	// Pay a third of the orders, through every gateway, before they expire.
	signer := gateway.NewSigner(e2eSecret)
	paid, n := 0, 0
	for oid, r := range accepted {
		if n++; n%3 != 0 {
			continue
		}
		amount := rows[oid].amount
		cb, _ := json.Marshal(api.PaymentCallback{OrderID: mustID(t, oid), TradeNo: "T" + oid, AmountCents: &amount})
		req, _ := http.NewRequest("POST", gateways[paid%len(gateways)].url+"/api/v1/payments/callback", strings.NewReader(string(cb)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Signature", signer.Sign(cb))
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			// Too late only if the timer already won; then it is not paid.
			if time.Since(r.answeredAt) < payTimeout*time.Second-time.Second {
				t.Fatalf("pay %s: %d", oid, resp.StatusCode)
			}
			continue
		}
		paid++
	}
	t.Logf("paid %d of %d orders", paid, len(accepted))

	// The rest time out: each cancelled once, never early, its unit back.
	cluster.Eventually(t, 60*time.Second, func() error {
		return e.settled(gateways[1], admin, aid, int64(len(accepted)-paid), int64(paid))
	})
	rows = orderRows(t, pool, act.ID)
	for oid, row := range rows {
		switch row.status {
		case "PAID":
		case "CANCELLED":
			if row.reason != "TIMEOUT" || !row.returned {
				t.Errorf("order %s: reason %q, returned %v", oid, row.reason, row.returned)
			}
			if row.cancelledAt.Before(row.expireAt) {
				t.Errorf("order %s cancelled %v before its expire_at", oid, row.expireAt.Sub(row.cancelledAt))
			}
		default:
			t.Errorf("order %s still %s", oid, row.status)
		}
	}

	// Everyone stops cleanly; the node leases are given back.
	all := append(append([]*process{}, gateways...), workers...)
	for _, p := range all {
		p.terminate()
	}
	for _, p := range all {
		code, err := p.waitExit(30 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", p.name, code)
		}
	}
	if keys := e.clusterKeys(t, top, ":node:*"); len(keys) != 0 {
		t.Errorf("node-id leases still held after shutdown: %v", keys)
	}
	t.Logf("whole run took %v", time.Since(start).Round(time.Millisecond))
}

// settled checks the activity's stats through p: per item, nothing
// reserved or returning, the given cancelled and paid totals across items
// (when cancelled+paid > 0; otherwise all sold units pending), and the
// conservation equation holding.
func (e *e2e) settled(p *process, admin, aid string, cancelled, paid int64) error {
	var stats api.ActivityStats
	status, body := e.do(p, "GET", "/admin/v1/activities/"+aid+"/stats", admin, nil, &stats)
	if status != http.StatusOK {
		return fmt.Errorf("stats: %d %s", status, body)
	}
	var c, pd int64
	for _, s := range stats.Items {
		if !s.Consistent || s.Reserved != 0 || s.Returning != 0 {
			return fmt.Errorf("item %s not settled: %+v", s.ItemID, s)
		}
		if cancelled+paid == 0 && (s.Pending != s.StockTotal || s.Available != 0) {
			return fmt.Errorf("item %s: %+v, want every unit pending", s.ItemID, s)
		}
		if cancelled+paid > 0 && (s.Pending != 0 || s.Available != s.Cancelled) {
			return fmt.Errorf("item %s: %+v, want nothing pending and every cancelled unit available", s.ItemID, s)
		}
		c += s.Cancelled
		pd += s.Paid
	}
	if cancelled+paid > 0 && (c != cancelled || pd != paid) {
		return fmt.Errorf("%d cancelled and %d paid, want %d and %d", c, pd, cancelled, paid)
	}
	return nil
}

// clusterKeys lists the keys under the test's prefix matching pattern, on
// every master.
func (e *e2e) clusterKeys(t *testing.T, top topology, pattern string) []string {
	t.Helper()
	if top.masters == nil {
		return e.redisKeys(pattern)
	}
	var keys []string
	for _, m := range top.masters {
		k, err := m.Keys(context.Background(), top.prefix+pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k...)
	}
	return keys
}

// checkSpread fails unless the activity's items live on every master.
func checkSpread(t *testing.T, top topology, act api.Activity) {
	t.Helper()
	ctx := context.Background()
	owners := map[string]int{}
	for _, it := range act.Items {
		key := fmt.Sprintf("%s:{a:%s:i:%s}:item", top.prefix, act.ID, it.ID)
		for _, m := range top.masters {
			if n, err := m.Exists(ctx, key).Result(); err == nil && n == 1 {
				owners[m.Options().Addr]++
			}
		}
	}
	if len(owners) != len(top.masters) {
		t.Fatalf("the items live on %v, want all %d masters", owners, len(top.masters))
	}
	t.Logf("items per Redis master: %v", owners)
}

// checkStreams fails unless seckill's streams have 3 replicas, read back
// from the cluster.
func checkStreams(t *testing.T, urls string) {
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
	for _, name := range []string{"SECKILL_ORDERS", "SECKILL_TIMEOUTS"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas, cluster %+v; want 3", name, info.Config.Replicas, info.Cluster)
		}
	}
	if s, err := js.Stream(ctx, "SECKILL_TIMEOUTS"); err == nil && !s.CachedInfo().Config.AllowMsgSchedules {
		t.Error("the timeout stream has no message schedules")
	}
}

// checkPersisterConsumer fails unless the order stream has exactly one
// consumer, the persisters' shared durable, with nothing left to deliver
// or ack.
func checkPersisterConsumer(t *testing.T, urls string) {
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
	s, err := js.Stream(ctx, "SECKILL_ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range s.ConsumerNames(ctx).Name() {
		names = append(names, n)
	}
	if len(names) != 1 || names[0] != "persister" {
		t.Fatalf("order stream consumers %v, want the one shared durable \"persister\"", names)
	}
	cluster.Eventually(t, 10*time.Second, func() error {
		c, err := s.Consumer(ctx, "persister")
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("persister consumer: %d pending, %d unacked, cluster %+v", info.NumPending, info.NumAckPending, info.Cluster)
		}
		return nil
	})
}

type orderRow struct {
	status, reason        string
	returned              bool
	amount                int64
	expireAt, cancelledAt time.Time
}

// orderRows reads the activity's orders from PostgreSQL by id.
func orderRows(t *testing.T, pool *pgxpool.Pool, aid api.ID) map[string]orderRow {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT id, status, coalesce(cancel_reason, ''), stock_returned, amount_cents, expire_at,
		        coalesce(cancelled_at, expire_at)
		   FROM orders WHERE activity_id = $1`, int64(aid))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]orderRow{}
	for rows.Next() {
		var id int64
		var r orderRow
		if err := rows.Scan(&id, &r.status, &r.reason, &r.returned, &r.amount, &r.expireAt, &r.cancelledAt); err != nil {
			t.Fatal(err)
		}
		out[strconv.FormatInt(id, 10)] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustID(t *testing.T, s string) api.ID {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return api.ID(n)
}
