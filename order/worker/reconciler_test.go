package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/worker"
)

// A reservation that never reached JetStream (the gateway died after the
// buy script) becomes exactly one order once it is older than the grace;
// a younger one is left to the persister.
func TestReconcilerPersistsLostReservationsOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{cfg: worker.Config{Reconciler: worker.ReconcilerConfig{Grace: time.Hour}}})
	aid, iid := f.publish(t, 10, time.Minute)
	rs := f.buy(t, aid, iid, 1, 3) // never published
	if n, err := f.w.Reconciler().RunOnce(f.ctx); err != nil || n != 0 {
		t.Fatalf("reconciler inside the grace: %d orders (%v), want 0", n, err)
	}
	// Grace of 1ns: every reservation counts as lost.
	r := worker.NewReconciler(f.log, f.store, f.stock, worker.NewMetrics(prometheus.NewRegistry()),
		worker.ReconcilerConfig{Grace: time.Nanosecond}, f.w.Timeouts().Schedule)
	if n, err := r.RunOnce(f.ctx); err != nil || n != 3 {
		t.Fatalf("reconciler: %d orders (%v), want 3", n, err)
	}
	if n, err := r.RunOnce(f.ctx); err != nil || n != 0 {
		t.Fatalf("second pass: %d orders (%v), want 0", n, err)
	}
	for _, res := range rs {
		o, err := f.store.Order(f.ctx, res.OrderID)
		if err != nil || o.UserID != res.UserID {
			t.Fatalf("order %d: %+v %v", res.OrderID, o, err)
		}
	}
	if s := f.snapshot(t, aid, iid); len(s.Reservations) != 0 || s.Held != 3 || s.Available != 7 {
		t.Fatalf("after reconciling: %+v, want reservations cleared and stock unchanged", s)
	}
}

// When arming the orders' payment timers fails (the timeout stream lost its
// leader), the reservations stay, so the next pass arms them again rather
// than leaving the orders to the sweeper.
func TestReconcilerRearmsTimersAfterAFailedSchedule(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{})
	aid, iid := f.publish(t, 10, time.Minute)
	rs := f.buy(t, aid, iid, 1, 3) // never published
	var armed map[int64]bool
	failing := true
	after := func(ctx context.Context, orders []order.Order) error {
		if failing {
			return errors.New("nats: no response from stream")
		}
		armed = map[int64]bool{}
		for _, o := range orders {
			armed[o.ID] = true
		}
		return nil
	}
	r := worker.NewReconciler(f.log, f.store, f.stock, worker.NewMetrics(prometheus.NewRegistry()),
		worker.ReconcilerConfig{Grace: time.Nanosecond}, after)
	// The reservations count as lost once older than the grace (1 ns, at
	// the millisecond resolution of their index): the first pass that sees
	// them fails to arm their timers and says so.
	cluster.Eventually(t, 5*time.Second, func() bool {
		_, err := r.RunOnce(f.ctx)
		return err != nil
	})
	if s := f.snapshot(t, aid, iid); len(s.Reservations) != 3 {
		t.Fatalf("after the failed arming: %d reservations left, want 3 (their timers are not armed)", len(s.Reservations))
	}
	failing = false
	if _, err := r.RunOnce(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, res := range rs {
		if !armed[res.OrderID] {
			t.Errorf("order %d: timer not armed on the next pass", res.OrderID)
		}
	}
	if s := f.snapshot(t, aid, iid); len(s.Reservations) != 0 || s.Held != 3 {
		t.Fatalf("after the second pass: %+v, want reservations cleared, 3 held", s)
	}
}
