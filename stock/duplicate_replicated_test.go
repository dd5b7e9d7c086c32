package stock_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock"
)

// TestRetryAfterNotReplicated: under DurabilityReplica a buy whose master
// could not confirm it on a replica fails with ErrNotReplicated (503
// STOCK_UNCONFIRMED); the client's retry with the same Idempotency-Key,
// through another gateway (a fresh connection, which wrote nothing), finds
// the first order as a duplicate. While the replica still lacks it the
// retry must fail the same way; once the replica has it, the retry
// answers the same order, handed on. The replica is paused (SIGSTOP): it
// keeps its link but acknowledges nothing.
func TestRetryAfterNotReplicated(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	master := cluster.NewRedis(t, "--repl-ping-replica-period", "3600")
	replica := cluster.NewRedis(t)
	mc, rc := master.Client(), replica.Client()
	t.Cleanup(func() { _ = mc.Close(); _ = rc.Close() })
	host, port, _ := strings.Cut(master.Addr, ":")
	if err := rc.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 20*time.Second, func() bool {
		return infoValue(rc.Info(ctx, "replication").Val(), "master_link_status") == "up"
	})
	keys := stock.Keys{Prefix: "retry"}
	dur := stock.WithDurability(stock.Durability{Mode: stock.DurabilityReplica, Replicas: 1, Timeout: 2 * time.Second}) // long: the confirmed case must not time out on a loaded machine
	if _, err := stock.NewStore(mc, keys).Warm(ctx, shardMeta(1, 1)); err != nil {
		t.Fatal(err)
	}
	// The replica is online and has acknowledged the warm-up: a WAIT on a
	// connection that wrote nothing since would now count it.
	cluster.Eventually(t, 20*time.Second, func() bool {
		return mc.Do(ctx, "WAIT", 1, 100).Val() == int64(1)
	})
	// A gateway: its own client, its own connections.
	gateway := func() (*stock.Batcher, *recorder) {
		c := redis.NewClient(&redis.Options{Addr: master.Addr, Protocol: 2})
		t.Cleanup(func() { _ = c.Close() })
		var fw recorder
		return stock.NewBatcher(stock.NewStore(c, keys, dur), &fw, stock.BatchConfig{Pipelines: 1, MaxCalls: 8}), &fw
	}
	req := stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 1, Quantity: 1, IdempotencyKey: "k1"}

	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = replica.Resume()
		}
	})
	first, fw1 := gateway()
	req.OrderID = newOrderID()
	if _, err := first.Buy(ctx, req); !errors.Is(err, stock.ErrNotReplicated) {
		t.Fatalf("buy with the replica paused: %v, want ErrNotReplicated", err)
	}
	firstID := req.OrderID
	second, fw2 := gateway()
	req.OrderID = newOrderID()
	if res, err := second.Buy(ctx, req); !errors.Is(err, stock.ErrNotReplicated) {
		t.Fatalf("retry through another gateway with the replica still paused: %+v, %v; want ErrNotReplicated", res, err)
	}
	if fw1.count()+fw2.count() != 0 {
		t.Fatalf("%d orders handed on while unconfirmed", fw1.count()+fw2.count())
	}

	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	third, fw3 := gateway()
	req.OrderID = newOrderID()
	res, err := third.Buy(ctx, req)
	if err != nil || !res.Duplicate || res.OrderID != firstID || !res.ReservationFound {
		t.Fatalf("retry with the replica back: %+v, %v; want the first order %d, found", res, err, firstID)
	}
	if fw3.count() != 1 {
		t.Fatalf("retry with the replica back handed on %d orders, want 1", fw3.count())
	}

	// The duplicate writes to the replication stream: WAIT on Redis 7.0
	// counts from the master's offset at any command of the connection,
	// but later versions only from the connection's last propagated write,
	// and a duplicate that wrote nothing would let WAIT confirm nothing.
	offset := func() string { return infoValue(mc.Info(ctx, "replication").Val(), "master_repl_offset") }
	before := offset()
	req.OrderID = newOrderID()
	if res, err := stock.NewStore(mc, keys).Buy(ctx, req); err != nil || !res.Duplicate {
		t.Fatalf("duplicate buy: %+v, %v", res, err)
	}
	if after := offset(); after == before {
		t.Fatalf("a duplicate buy left the master's replication offset at %s", after)
	}
}
