package worker_test

import (
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/order/worker"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/lifecycle"
	"github.com/seckill/seckill/stock/stocktest"
)

// checkTimeouts persists n orders with a 1s payment timeout, pays one, and
// checks that the timers cancel every other one at its expire_at, none
// before, each once, with its unit returned. running runs the persister and
// the timers as services (and checks p99 lateness under 1s); otherwise the
// test drives them through RunOnce.
func checkTimeouts(t *testing.T, f *fixture, n int, running bool) {
	tm := f.w.Timeouts()
	timeout := time.Second
	if running {
		timeout = 2 * time.Second // the buys themselves take a while
	}
	aid, iid := f.publish(t, int64(n), timeout)
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
	nReported := func() int { mu.Lock(); defer mu.Unlock(); return len(reported) }
	var rs []stock.Reservation
	if running {
		for _, s := range []*lifecycle.Service{f.w.Persister(0).Service(), tm.Service()} {
			if err := s.Start(f.ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.StopAndCancel)
		}
		// As gateways do: 32 buyers at once, each order published at once.
		rs = make([]stock.Reservation, n)
		var wg sync.WaitGroup
		next := make(chan int)
		for range 32 {
			wg.Go(func() {
				for i := range next {
					rs[i] = f.buy(t, aid, iid, int64(1+i), 1)[0]
					f.publishOrders(t, rs[i:i+1])
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
	} else {
		rs = f.buy(t, aid, iid, 1, n)
	}
	// One order is paid before its timer fires: the last one bought, whose
	// window is the furthest off.
	paid := rs[n-1].OrderID
	if running {
		cluster.Eventually(t, 10*time.Second, func() bool {
			_, err := f.store.Order(f.ctx, paid)
			return err == nil
		})
	} else {
		f.publishOrders(t, rs)
		f.persistAll(t, n)
	}
	if _, won, err := f.store.MarkPaid(f.ctx, paid, "T-1", time.Now()); err != nil || !won {
		t.Fatalf("pay: won %v, %v", won, err)
	}
	if running {
		cluster.Eventually(t, 20*time.Second, func() bool { return nReported() >= n-1 })
	} else {
		cancelled := 0
		cluster.Eventually(t, 15*time.Second, func() bool {
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
	}
	// Stock goes back beside the timer loop, after the UPDATE it reported.
	cluster.Eventually(t, 10*time.Second, func() bool {
		return f.countRows(t, "activity_id = $1 AND status = 'CANCELLED' AND NOT stock_returned", aid) == 0
	})
	rows, err := f.store.Pool().Query(f.ctx,
		`SELECT id, coalesce(cancel_reason, ''), stock_returned, cancelled_at - expire_at
		   FROM orders WHERE activity_id = $1 AND status = 'CANCELLED'`, aid)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var late []time.Duration
	for rows.Next() {
		var id int64
		var reason string
		var returned bool
		var d time.Duration
		if err := rows.Scan(&id, &reason, &returned, &d); err != nil {
			t.Fatal(err)
		}
		if d < 0 {
			t.Errorf("order %d cancelled %v before its expire_at", id, -d)
		}
		if reason != string(order.CancelTimeout) || !returned {
			t.Errorf("order %d: reason %q, stock returned %v", id, reason, returned)
		}
		mu.Lock()
		_, ok := reported[id]
		mu.Unlock()
		if !ok {
			t.Errorf("order %d cancelled but not by its timer", id)
		}
		late = append(late, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(late) != n-1 {
		t.Fatalf("%d orders cancelled, want %d", len(late), n-1)
	}
	if o, err := f.store.Order(f.ctx, paid); err != nil || o.Status != order.StatusPaid {
		t.Fatalf("paid order: %+v %v", o, err)
	}
	if s := f.snapshot(t, aid, iid); s.Available != int64(n-1) || s.Held != 1 {
		t.Fatalf("after the timers: %+v, want %d available, 1 held", s, n-1)
	}
	if running {
		slices.Sort(late)
		p50, p99 := late[len(late)/2], late[(len(late)-1)*99/100]
		t.Logf("payment timeout lateness over %d orders: p50 %v, p99 %v, max %v", len(late), p50, p99, late[len(late)-1])
		if p99 >= time.Second {
			t.Errorf("p99 lateness %v, want < 1s", p99)
		}
	}
}

// The timers cancel every unpaid order at its expire_at, none before, and
// return its unit; an order paid in time is left alone. Both delivery modes:
// JetStream message schedules and the delayed-redelivery fallback, driven
// by RunOnce and as running services.
func TestTimeoutsCancelAtExpireNeverEarly(t *testing.T) {
	// Not parallel with the package's other tests: the running cases
	// measure lateness, which the other tests' load would add to.
	for _, tc := range []struct {
		name        string
		noSchedules bool
		running     bool
		n           int
	}{
		{"schedules/RunOnce", false, false, 30},
		{"fallback/RunOnce", true, false, 30},
		{"schedules/running", false, true, 1000},
		{"fallback/running", true, true, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.running {
				// The running cases measure lateness: they run one at a
				// time (before the parallel cases are released), so they
				// do not measure each other.
				t.Parallel()
			}
			f := setup(t, opts{noSchedules: tc.noSchedules})
			if f.w.Timeouts().Scheduled() == tc.noSchedules {
				t.Fatalf("Scheduled() = %v with DisableSchedules %v", f.w.Timeouts().Scheduled(), tc.noSchedules)
			}
			checkTimeouts(t, f, tc.n, tc.running)
		})
	}
}

// TestTimeoutsOnOldNATS runs the timers against a real server without
// message schedules (nats-server < 2.12), whose stream config silently drops
// AllowMsgSchedules. .ci/run sets SECKILL_TEST_OLD_NATS_URL when such a
// server answers.
func TestTimeoutsOnOldNATS(t *testing.T) {
	url := os.Getenv("SECKILL_TEST_OLD_NATS_URL")
	if url == "" {
		t.Skip("SECKILL_TEST_OLD_NATS_URL not set")
	}
	// Not parallel: it measures lateness (running timers), like the
	// running cases of TestTimeoutsCancelAtExpireNeverEarly.
	f := setup(t, opts{broker: ordertest.NewExternalBroker(t, url)})
	if f.w.Timeouts().Scheduled() {
		t.Fatal("the old server reported schedules; expected the fallback")
	}
	checkTimeouts(t, f, 300, true)
}

// A Redis that stops answering (a master frozen until the cluster fails it
// over) holds up the stock returns of the orders it carries, never the
// cancellation of later orders: the timer loop leaves a stuck return beside
// it. Once Redis answers again every unit comes back exactly once.
func TestTimeoutsDoNotWaitForAStuckRedis(t *testing.T) {
	srv := stocktest.StartServer(t)
	// No retries and a long read timeout: a return sent while Redis is
	// paused waits for the pause to end, as it would on a frozen master.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: 20 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	f := setup(t, opts{rdb: rdb, cfg: worker.Config{Sweeper: worker.SweeperConfig{ReturnAfter: time.Millisecond}}})
	tm := f.w.Timeouts()
	const n = 20
	// Group A expires first; group B a second later, while Redis is paused.
	aidA, iidA := f.publish(t, n, 2*time.Second)
	aidB, iidB := f.publish(t, n, 3*time.Second)
	rs := append(f.buy(t, aidA, iidA, 1, n), f.buy(t, aidB, iidB, 1, n)...)
	f.publishOrders(t, rs)
	f.persistAll(t, 2*n)
	var mu sync.Mutex
	cancelledAt := map[int64]time.Time{}
	tm.OnCancelled = func(o order.Order, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		cancelledAt[o.ID] = at
	}
	firstA := time.Now().Add(time.Hour)
	for _, r := range rs[:n] {
		o, err := f.store.Order(f.ctx, r.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		if o.ExpireAt.Before(firstA) {
			firstA = o.ExpireAt
		}
	}
	time.Sleep(time.Until(firstA.Add(-200 * time.Millisecond))) // time is the subject: pause just before A is due
	const pause = 6 * time.Second
	if err := srv.Client().Do(f.ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	pausedUntil := time.Now().Add(pause)
	s := tm.Service()
	if err := s.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.StopAndCancel)
	cluster.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(cancelledAt) == 2*n
	})
	// Group B fell due while Redis was paused; its cancellation must not
	// have waited for group A's stuck returns.
	for _, r := range rs[n:] {
		o, err := f.store.Order(f.ctx, r.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		at := cancelledAt[r.OrderID]
		mu.Unlock()
		if late := at.Sub(o.ExpireAt); late > 2*time.Second {
			t.Errorf("order %d of group B cancelled %v after its expire_at (Redis paused until %v after it)",
				r.OrderID, late, pausedUntil.Sub(o.ExpireAt))
		}
	}
	// Every unit comes back once Redis answers: the returns left beside the
	// loop finish, and the sweeper finishes any left to it.
	cluster.Eventually(t, 30*time.Second, func() bool {
		if _, _, err := f.w.Sweeper().RunOnce(f.ctx); err != nil {
			t.Logf("sweep: %v", err)
		}
		return f.countRows(t, "activity_id IN ($1, "+strconv.FormatInt(aidB, 10)+") AND status = 'CANCELLED' AND NOT stock_returned", aidA) == 0
	})
	tm.WaitReturns()
	for _, it := range [][2]int64{{aidA, iidA}, {aidB, iidB}} {
		if s := f.snapshot(t, it[0], it[1]); s.Available != n || s.Held != 0 {
			t.Errorf("item %d after the returns: %d available, %d held; want %d and 0", it[1], s.Available, s.Held, n)
		}
	}
}
