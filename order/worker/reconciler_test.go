package worker_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
