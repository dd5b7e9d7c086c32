package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/order/worker"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestRecoveryGoesOnPastAPausedMaster: one Redis master does not answer
// (CLIENT PAUSE); an item on another master lost its state. Recovery still
// rebuilds that item, and leaves the paused master's item alone: its
// state is unknown, not missing.
func TestRecoveryGoesOnPastAPausedMaster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, rdb, keys := stocktest.NewPrivateCluster(t)
	st := order.NewStore(ordertest.NewPool(t))
	sk := stock.NewStore(rdb, keys, stock.WithLogger(testLogger()))
	now := time.Now()
	var items []order.Item
	for i := range 12 {
		items = append(items, order.Item{Name: "item", PriceCents: 100, Stock: int64(10 + i)})
	}
	a, err := st.CreateActivity(ctx, order.Activity{Name: t.Name(), StartAt: now.Add(-time.Minute), EndAt: now.Add(time.Hour),
		PayTimeout: time.Minute, PerUserLimit: 1, Items: items}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := order.NewAdmin(st, sk).Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	// Two items on two masters: one on the master to pause, one lost.
	master := map[int64]string{}
	for _, it := range a.Items {
		m, err := rdb.MasterForKey(ctx, keys.Item(a.ID, it.ID))
		if err != nil {
			t.Fatal(err)
		}
		master[it.ID] = m.Options().Addr
	}
	paused, lost := a.Items[0].ID, int64(0)
	for _, it := range a.Items {
		if master[it.ID] != master[paused] {
			lost = it.ID
			break
		}
	}
	if lost == 0 {
		t.Fatal("every item on one master")
	}
	for _, k := range []string{keys.Item(a.ID, lost), keys.Buyers(a.ID, lost)} {
		if err := rdb.Del(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// CLIENT PAUSE, not SIGSTOP: the cluster bus keeps running, so the
	// master is not failed over while the passes run.
	var node *cluster.Redis
	for _, n := range c.Nodes {
		if n.Addr == master[paused] {
			node = n
		}
	}
	// The pause ends by itself (CLIENT UNPAUSE would wait behind it).
	admin := node.Client()
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.Do(ctx, "CLIENT", "PAUSE", 20000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	// The worker's client gives up on a silent node quickly, as seckill's
	// does (redis.read_timeout).
	wrdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: 2, MaxRedirects: 1,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { _ = wrdb.Close() })
	wsk := stock.NewStore(wrdb, keys, stock.WithLogger(testLogger()))

	rec := worker.NewRecovery(testLogger(), st, wsk, func(context.Context) (bool, error) { return true, nil },
		worker.RecoveryConfig{Settle: time.Nanosecond})
	// The first pass notes the loss, the next one rebuilds; both report
	// the paused master.
	for pass := 1; pass <= 2; pass++ {
		n, err := rec.RunOnce(ctx)
		if err == nil {
			t.Errorf("pass %d with a master paused: no error", pass)
		}
		if want := pass - 1; n != want {
			t.Fatalf("pass %d: rebuilt %d (%v), want %d", pass, n, err, want)
		}
	}
	snap, err := sk.Snapshot(ctx, a.ID, lost)
	if err != nil || !snap.Exists || snap.Available == 0 {
		t.Fatalf("lost item on a healthy master after recovery: %+v (%v), want rebuilt", snap, err)
	}
	cluster.Eventually(t, 30*time.Second, func() bool { return admin.Ping(ctx).Err() == nil })
	snap, err = sk.Snapshot(ctx, a.ID, paused)
	if err != nil || !snap.Exists {
		t.Fatalf("the paused master's item after it resumed: %+v (%v), want untouched", snap, err)
	}
}
