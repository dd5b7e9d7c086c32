package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestBinaryOnRedisCluster runs `seckill serve` with redis.addr naming the
// nodes of a Redis Cluster (3 masters, 3 replicas): it starts (node lease,
// semaphore, shard checks), picks durability replica under auto, publishes
// items that land on different masters and sells exactly their stock.
func TestBinaryOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the binary against a Redis Cluster")
	}
	seckillBinary(t)
	cfg, err := filepath.Abs(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	c, rdb, keys := stocktest.NewPrivateCluster(t)
	e := &e2e{t: t, config: cfg, rdb: rdb, prefix: keys.Prefix, client: &http.Client{Timeout: 15 * time.Second}}
	t.Cleanup(e.client.CloseIdleConnections)
	e.base = map[string]string{
		"SECKILL_POSTGRES_DSN":     newDatabase(t),
		"SECKILL_REDIS_ADDR":       strings.Join(c.Addrs(), ","),
		"SECKILL_REDIS_KEY_PREFIX": keys.Prefix,
		// A replica's ack that a loaded test machine can delay past the
		// 50 ms default; still below the 500 ms read timeout.
		"SECKILL_REDIS_WAIT_TIMEOUT": "400ms",
		"SECKILL_AUTH_SECRET":        e2eSecret,
		"SECKILL_PAYMENT_SECRET":     e2eSecret,
		"SECKILL_LOG_LEVEL":          "info",
		"SECKILL_LOG_FORMAT":         "json",
	}
	port := freePort(t)
	e.a = startProcess(t, "A", port, e.env(map[string]string{
		"SECKILL_HTTP_ADDR":        fmt.Sprintf("127.0.0.1:%d", port),
		"SECKILL_NATS_URL":         "",
		"SECKILL_NATS_LISTEN":      fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"SECKILL_NATS_DATA_DIR":    t.TempDir(),
		"SECKILL_SENTINEL_LOG_DIR": t.TempDir(),
	}), "--role=all", "--config", cfg)
	e.a.waitReady(60 * time.Second)
	if recs := e.a.records("redis durability"); len(recs) != 1 || recs[0]["mode"] != "replica" {
		t.Fatalf("durability log records %v, want one with mode replica (auto on a cluster)", recs)
	}

	const items, perItem = 6, 5
	admin := e.token("--admin")
	now := time.Now().UTC()
	req := api.CreateActivityRequest{Name: "cluster", StartAt: now.Add(-time.Minute), EndAt: now.Add(time.Hour),
		PayTimeoutSeconds: 900, PerUserLimit: 1}
	for i := range items {
		req.Items = append(req.Items, api.NewItem{Name: fmt.Sprintf("item %d", i), PriceCents: 100, Stock: perItem})
	}
	var created api.Activity
	if status, body := e.do(e.a, "POST", "/admin/v1/activities", admin, req, &created); status != http.StatusCreated {
		t.Fatalf("create activity: %d %s", status, body)
	}
	aid := created.ID.String()
	if status, body := e.do(e.a, "POST", "/admin/v1/activities/"+aid+"/publish", admin, nil, nil); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	masters := map[string]bool{}
	for _, it := range created.Items {
		m, err := rdb.MasterForKey(t.Context(), keys.Item(int64(created.ID), int64(it.ID)))
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr] = true
	}
	if len(masters) < 2 {
		t.Logf("the %d items landed on %d master(s) only", items, len(masters))
	}

	const buyers = items * (perItem + 3)
	tokens := e.userTokens(5000, buyers)
	statuses := make([]int, buyers)
	codes := make([]string, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], codes[i], _ = e.buy(e.a, tokens[i], aid, created.Items[i%items].ID.String(), 1)
		}()
	}
	wg.Wait()
	accepted := map[int]int{}
	for i := range buyers {
		switch {
		case statuses[i] == http.StatusAccepted:
			accepted[i%items]++
		case statuses[i] == http.StatusConflict && codes[i] == api.CodeSoldOut:
		default:
			t.Errorf("buyer %d: %d %s", i, statuses[i], codes[i])
		}
	}
	for i := range items {
		if accepted[i] != perItem {
			t.Errorf("item %d: %d accepted, want %d", i, accepted[i], perItem)
		}
	}
}
