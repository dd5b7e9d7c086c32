package worker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/worker"
	"github.com/seckill/seckill/stock"
)

// flushItem deletes every Redis key of the test but the leases, as a Redis
// restart without persistence would.
func (f *fixture) flushItem(t *testing.T) {
	t.Helper()
	iter := f.rdb.Scan(f.ctx, 0, f.keys.Prefix+":*", 1000).Iterator()
	for iter.Next(f.ctx) {
		if k := iter.Val(); !strings.Contains(k, "{sem:") && !strings.Contains(k, ":node:") {
			f.rdb.Del(f.ctx, k)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
}

// Lost Redis state is rebuilt from PostgreSQL once it has been missing for
// Settle and the order stream is drained: available = total − live units,
// holders still limited, cancelled buyers free to buy again, and a
// reservation that survived counts as an order.
func TestRecoveryRebuildsLostState(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{})
	aid, iid := f.publish(t, 50, time.Minute)
	rs := f.buy(t, aid, iid, 1, 20)
	f.publishOrders(t, rs)
	f.persistAll(t, 20)
	f.requireDrained(t, "recovery rebuilds only once the stream is drained")
	if _, err := f.canceller.Cancel(f.ctx, []int64{rs[0].OrderID, rs[1].OrderID}, order.CancelUser, false); err != nil {
		t.Fatal(err)
	}
	f.flushItem(t)
	if _, err := f.stock.Buy(f.ctx, stock.BuyRequest{ActivityID: aid, ItemID: iid, UserID: 100, OrderID: nextOrderID.Add(1), Quantity: 1}); !errors.Is(err, stock.ErrNotPublished) {
		t.Fatalf("buy from lost state: %v, want ErrNotPublished (never sell from missing state)", err)
	}
	// Settle of 1ns: the first pass notes the loss, the next one rebuilds.
	rec := worker.NewRecovery(f.log, f.store, f.stock, worker.OrdersDrained(f.broker, worker.PersisterDurable),
		worker.RecoveryConfig{Settle: time.Nanosecond})
	if n, err := rec.RunOnce(f.ctx); err != nil || n != 0 {
		t.Fatalf("first pass: rebuilt %d (%v), want 0 before Settle", n, err)
	}
	if n, err := rec.RunOnce(f.ctx); err != nil || n != 1 {
		t.Fatalf("second pass: rebuilt %d (%v), want 1", n, err)
	}
	if s := f.snapshot(t, aid, iid); !s.Exists || s.Available != 32 || s.Held != 18 {
		t.Fatalf("rebuilt: %+v, want 32 available, 18 held", s)
	}
	if n, err := rec.RunOnce(f.ctx); err != nil || n != 0 {
		t.Fatalf("third pass: rebuilt %d (%v), want 0", n, err)
	}
	buy := func(uid int64) error {
		_, err := f.stock.Buy(f.ctx, stock.BuyRequest{ActivityID: aid, ItemID: iid, UserID: uid, OrderID: nextOrderID.Add(1), Quantity: 1})
		return err
	}
	if err := buy(5); !errors.Is(err, stock.ErrLimitExceeded) {
		t.Fatalf("holder after the rebuild: %v, want ErrLimitExceeded", err)
	}
	if err := buy(1); err != nil {
		t.Fatalf("a buyer who cancelled, after the rebuild: %v", err)
	}
}

// Recovery waits while accepted orders are still in the stream: rebuilding
// before they are rows would sell their units twice.
func TestRecoveryWaitsForTheStreamToDrain(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{})
	aid, iid := f.publish(t, 10, time.Minute)
	rs := f.buy(t, aid, iid, 1, 4)
	f.publishOrders(t, rs) // accepted, not yet persisted
	f.flushItem(t)
	rec := worker.NewRecovery(f.log, f.store, f.stock, worker.OrdersDrained(f.broker, worker.PersisterDurable),
		worker.RecoveryConfig{Settle: time.Nanosecond})
	for i := range 3 {
		if n, err := rec.RunOnce(f.ctx); err != nil || n != 0 {
			t.Fatalf("pass %d with the stream not drained: rebuilt %d (%v), want 0", i, n, err)
		}
	}
	f.persistAll(t, 4)
	f.requireDrained(t, "the persister's acks must land before recovery may rebuild")
	if n, err := rec.RunOnce(f.ctx); err != nil || n != 1 {
		t.Fatalf("after draining: rebuilt %d (%v), want 1", n, err)
	}
	if s := f.snapshot(t, aid, iid); s.Available != 6 || s.Held != 4 {
		t.Fatalf("rebuilt: %+v, want 6 available, 4 held", s)
	}
}
