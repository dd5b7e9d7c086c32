package worker_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/worker"
)

// insertOverdue persists reservations as orders whose payment window closed
// a minute ago, as if the timers had been down: the sweeper's case.
func (f *fixture) insertOverdue(t *testing.T, aid, iid int64, n int) []order.Order {
	t.Helper()
	rs := f.buy(t, aid, iid, 1, n)
	orders := make([]order.Order, n)
	for i, r := range rs {
		orders[i] = order.FromReservation(r)
		orders[i].ExpireAt = time.Now().Add(-time.Minute)
	}
	if _, err := f.store.InsertOrders(f.ctx, orders); err != nil {
		t.Fatal(err)
	}
	return orders
}

// Any number of sweepers racing over the same overdue orders close each
// exactly once and return each unit exactly once.
func TestSweepersCloseOverdueOrdersExactlyOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{})
	const n, sweepers = 60, 8
	aid, iid := f.publish(t, n+5, time.Minute)
	f.insertOverdue(t, aid, iid, n)
	notDue := f.buy(t, aid, iid, 1000, 5) // live orders, not overdue
	f.publishOrders(t, notDue)
	f.persistAll(t, 5)
	if s := f.snapshot(t, aid, iid); s.Available != 0 {
		t.Fatalf("before sweeping: %+v", s)
	}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range sweepers {
		// Separate sweepers, as in separate workers, with small batches so
		// they interleave.
		s := worker.NewSweeper(f.log, f.store, f.canceller, worker.SweeperConfig{Grace: time.Millisecond, Batch: 7})
		wg.Go(func() {
			c, _, err := s.RunOnce(f.ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += c
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != n {
		t.Fatalf("sweepers reported %d cancels, want exactly %d", total, n)
	}
	if c := f.countRows(t, "activity_id = $1 AND status = 'CANCELLED' AND cancel_reason = 'TIMEOUT' AND stock_returned", aid); c != n {
		t.Fatalf("%d orders cancelled with stock returned, want %d", c, n)
	}
	if s := f.snapshot(t, aid, iid); s.Available != n || s.Held != 5 {
		t.Fatalf("after sweeping: %+v, want %d units back exactly once, 5 held", s, n)
	}
	// A second pass finds nothing.
	if c, r, err := f.w.Sweeper().RunOnce(f.ctx); c != 0 || r != 0 || err != nil {
		t.Fatalf("second pass: %d cancelled, %d retried, %v", c, r, err)
	}
}

// A cancel whose stock return was cut short (a crash between the UPDATE and
// the return) is finished by the sweeper, and more returns, timers and
// sweeps racing on it change nothing.
func TestSweeperFinishesInterruptedReturnOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{})
	aid, iid := f.publish(t, 2, time.Minute)
	rs := f.buy(t, aid, iid, 1, 1)
	f.publishOrders(t, rs)
	f.persistAll(t, 1)
	id := rs[0].OrderID
	f.canceller.AfterUpdate = func([]order.Order) error { return errors.New("killed between UPDATE and stock return") }
	won, err := f.canceller.Cancel(f.ctx, []int64{id}, order.CancelUser, false)
	f.canceller.AfterUpdate = nil
	if len(won) != 1 || err == nil {
		t.Fatalf("cancel: won %d, err %v; want the crash after the UPDATE", len(won), err)
	}
	if s := f.snapshot(t, aid, iid); s.Available != 1 {
		t.Fatalf("after the crash: %+v, want the unit still out", s)
	}
	// ReturnAfter of 1ns: the interrupted return is due at once.
	sw := worker.NewSweeper(f.log, f.store, f.canceller, worker.SweeperConfig{ReturnAfter: time.Nanosecond})
	if _, retried, err := sw.RunOnce(f.ctx); err != nil || retried != 1 {
		t.Fatalf("sweeper retried %d (%v), want 1", retried, err)
	}
	o, err := f.store.Order(f.ctx, id)
	if err != nil || !o.StockReturned {
		t.Fatalf("stock_returned not recorded: %+v %v", o, err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				_ = f.canceller.ReturnStock(f.ctx, []order.Order{o})
			case 1:
				_, _ = f.canceller.Cancel(f.ctx, []int64{id}, order.CancelTimeout, false)
			default:
				_, _, _ = sw.RunOnce(f.ctx)
			}
		})
	}
	wg.Wait()
	if s := f.snapshot(t, aid, iid); s.Available != 2 || s.Held != 0 {
		t.Fatalf("after the races: %+v, want the unit back exactly once", s)
	}
}

// With the timers down, a running sweeper (interval 200ms, grace 100ms)
// closes every overdue order within about one interval of its start.
func TestRunningSweeperClosesOverdueWithinAnInterval(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{cfg: worker.Config{Sweeper: worker.SweeperConfig{
		Every: 200 * time.Millisecond, Grace: 100 * time.Millisecond}}})
	const n = 50
	aid, iid := f.publish(t, n, time.Minute)
	f.insertOverdue(t, aid, iid, n)
	svc := f.w.Sweeper().Service()
	back := time.Now()
	if err := svc.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.StopAndCancel()
	cluster.Eventually(t, 5*time.Second, func() bool {
		return f.countRows(t, "activity_id = $1 AND status = 'CANCELLED' AND stock_returned", aid) == n
	})
	if took := time.Since(back); took > time.Second {
		t.Fatalf("sweeper took %v to close %d overdue orders, want within about one interval", took, n)
	}
	if s := f.snapshot(t, aid, iid); s.Available != n || s.Held != 0 {
		t.Fatalf("after sweeping: %+v", s)
	}
}
