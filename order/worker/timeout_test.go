package worker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock/stocktest"
)

// The timers cancel every unpaid order at its expire_at, none before, and
// return its unit; an order paid in time is left alone. Both delivery modes:
// JetStream message schedules and the delayed-redelivery fallback.
func TestTimeoutsCancelAtExpireNeverEarly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		noSchedules bool
	}{{"schedules", false}, {"fallback", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, opts{noSchedules: tc.noSchedules})
			tm := f.w.Timeouts()
			if tm.Scheduled() == tc.noSchedules {
				t.Fatalf("Scheduled() = %v with DisableSchedules %v", tm.Scheduled(), tc.noSchedules)
			}
			const n = 30
			aid, iid := f.publish(t, n, time.Second)
			rs := f.buy(t, aid, iid, 1, n)
			f.publishOrders(t, rs)
			f.persistAll(t, n)
			// One order is paid before its timer fires.
			paid := rs[0].OrderID
			if _, won, err := f.store.MarkPaid(f.ctx, paid, "T-1", time.Now()); err != nil || !won {
				t.Fatalf("pay: won %v, %v", won, err)
			}
			var mu sync.Mutex
			reported := map[int64]time.Time{}
			tm.OnCancelled = func(o order.Order, at time.Time) {
				mu.Lock()
				defer mu.Unlock()
				if _, dup := reported[o.ID]; dup {
					t.Errorf("order %d reported cancelled twice", o.ID)
				}
				reported[o.ID] = at
			}
			cancelled := 0
			stocktest.Eventually(t, 15*time.Second, func() bool {
				k, err := tm.RunOnce(f.ctx)
				if err != nil {
					t.Fatal(err)
				}
				cancelled += k
				return cancelled >= n-1
			})
			if cancelled != n-1 {
				t.Fatalf("timers cancelled %d orders, want %d", cancelled, n-1)
			}
			rows, err := f.store.Pool().Query(f.ctx,
				`SELECT id, status, coalesce(cancel_reason, ''), stock_returned, cancelled_at - expire_at
				   FROM orders WHERE activity_id = $1 AND status = 'CANCELLED'`, aid)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				var status, reason string
				var returned bool
				var late time.Duration
				if err := rows.Scan(&id, &status, &reason, &returned, &late); err != nil {
					t.Fatal(err)
				}
				if late < 0 {
					t.Errorf("order %d cancelled %v before its expire_at", id, -late)
				}
				if reason != string(order.CancelTimeout) || !returned {
					t.Errorf("order %d: reason %q, stock returned %v", id, reason, returned)
				}
				if _, ok := reported[id]; !ok {
					t.Errorf("order %d cancelled but not by its timer", id)
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if o, err := f.store.Order(f.ctx, paid); err != nil || o.Status != order.StatusPaid {
				t.Fatalf("paid order: %+v %v", o, err)
			}
			if s := f.snapshot(t, aid, iid); s.Available != n-1 || s.Held != 1 {
				t.Fatalf("after the timers: %+v, want %d available, 1 held", s, n-1)
			}
		})
	}
}
