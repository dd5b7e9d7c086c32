package gateway_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// runInBackground runs f until the test ends.
func (h *harness) runInBackground(f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f(ctx) }()
	h.t.Cleanup(func() { cancel(); <-done })
}

// buyN makes users first..first+n-1 buy one unit each and returns the order ids.
func (h *harness) buyN(aid, iid string, first int64, n int) []string {
	h.t.Helper()
	ids := make([]string, n)
	parallel(n, 32, func(i int) {
		r := h.buy(first+int64(i), aid, iid, 1)
		if r.Status != http.StatusAccepted {
			h.t.Errorf("buy %d: %d %s", i, r.Status, r.Body)
			return
		}
		ids[i] = r.json(h.t)["order_id"].(string)
	})
	if h.t.Failed() {
		h.t.FailNow()
	}
	return ids
}

func (h *harness) pay(orderID string, tradeNo string, amount int64) response {
	body := []byte(fmt.Sprintf(`{"order_id":%q,"trade_no":%q,"amount_cents":%d,"paid_at":"2026-11-11T00:01:02Z"}`, orderID, tradeNo, amount))
	return h.do("POST", "/api/v1/payments/callback", "", body, "X-Signature", h.signer.Sign(body))
}

func (h *harness) orderRow(id string) order.Order {
	h.t.Helper()
	o, err := h.store.Order(context.Background(), atoi(id))
	if err != nil {
		h.t.Fatalf("order %s: %v", id, err)
	}
	return o
}

func TestPaymentCallback(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 5})
	ids := h.buyN(aid, iid, 1, 2)
	h.drain()
	id := ids[0]
	sign := func(body string) string { return h.signer.Sign([]byte(body)) }
	good := fmt.Sprintf(`{"order_id":%q,"trade_no":"T1","amount_cents":99900}`, id)
	cases := []struct {
		name, body, sig string
		status          int
		code            string
	}{
		{"no signature", good, "", 401, "INVALID_SIGNATURE"},
		{"bad signature", good, sign(good)[:62] + "00", 401, "INVALID_SIGNATURE"},
		{"signature of another body", good, sign(good + " "), 401, "INVALID_SIGNATURE"},
		{"signature not hex", good, "zz", 401, "INVALID_SIGNATURE"},
		{"signed with the auth secret", good, gatewaySignerFor(testSecret).Sign([]byte(good)), 401, "INVALID_SIGNATURE"},
		{"wrong amount", fmt.Sprintf(`{"order_id":%q,"trade_no":"T1","amount_cents":1}`, id), "", 400, "AMOUNT_MISMATCH"},
		{"unknown order", `{"order_id":"123456789","trade_no":"T1","amount_cents":99900}`, "", 404, "NOT_FOUND"},
		{"malformed body", `{"order_id":`, "", 400, "INVALID_REQUEST"},
		{"missing amount", fmt.Sprintf(`{"order_id":%q,"trade_no":"T1"}`, id), "", 400, "INVALID_REQUEST"},
		{"missing trade", fmt.Sprintf(`{"order_id":%q,"amount_cents":99900}`, id), "", 400, "INVALID_REQUEST"},
	}
	before := h.snapshot()
	for _, c := range cases {
		sig := c.sig
		if sig == "" && c.status != 401 {
			sig = sign(c.body)
		}
		r := h.do("POST", "/api/v1/payments/callback", "", c.body, "X-Signature", sig)
		if r.Status != c.status || r.code() != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Body, c.status, c.code)
		}
	}
	if after := h.snapshot(); after != before {
		t.Fatalf("rejected callbacks changed state:\n%s\n---\n%s", before, after)
	}

	if r := h.pay(id, "T1", 99900); r.Status != 200 || r.json(t)["status"] != "PAID" {
		t.Fatalf("pay: %d %s", r.Status, r.Body)
	}
	if r := h.pay(id, "T1", 99900); r.Status != 200 || r.json(t)["status"] != "PAID" {
		t.Fatalf("repeated callback: %d %s", r.Status, r.Body)
	}
	if r := h.pay(id, "T2", 99900); r.Status != 409 || r.code() != "ORDER_CLOSED" {
		t.Fatalf("second trade after PAID: %d %s", r.Status, r.Body)
	}
	if r := h.pay(ids[1], "T1", 99900); r.Status != 409 || r.code() != "ORDER_CLOSED" {
		t.Fatalf("trade reused for another order: %d %s", r.Status, r.Body)
	}
	o := h.orderRow(id)
	if o.Status != order.StatusPaid || o.TradeNo != "T1" || o.PaidAt == nil || !o.PaidAt.Equal(time.Date(2026, 11, 11, 0, 1, 2, 0, time.UTC)) {
		t.Fatalf("paid row %+v", o)
	}
	// Paid is final: neither the user nor the timer can cancel it.
	if r := h.do("POST", "/api/v1/orders/"+id+"/cancel", h.userToken(1), nil); r.Status != 409 || r.code() != "NOT_PENDING" {
		t.Fatalf("cancel of a paid order: %d %s", r.Status, r.Body)
	}
	if won, err := h.canceller.Cancel(context.Background(), []int64{atoi(id)}, order.CancelTimeout, false); err != nil || len(won) != 0 {
		t.Fatalf("timeout cancelled a paid order: %v %v", won, err)
	}
	if st := h.stats(aid); st.Paid != 1 || st.Pending != 1 || st.Available != 3 || !st.Consistent {
		t.Fatalf("stats %+v", st)
	}
}

func TestPaymentBeforePersistIsRetriedNotLost(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 5})
	id := h.buyN(aid, iid, 1, 1)[0]
	r := h.pay(id, "T9", 99900)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("callback before persist: %d %s (Retry-After %q), want 503 with Retry-After", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	h.drain()
	if r := h.pay(id, "T9", 99900); r.Status != 200 {
		t.Fatalf("retried callback: %d %s", r.Status, r.Body)
	}
	if o := h.orderRow(id); o.Status != order.StatusPaid {
		t.Fatalf("order %+v", o)
	}
}

func TestUserCancelReturnsStockAndQuota(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 1})
	id := h.buyN(aid, iid, 1, 1)[0]
	h.drain()
	if r := h.do("POST", "/api/v1/orders/"+id+"/cancel", h.userToken(2), nil); r.Status != 404 {
		t.Fatalf("another user's cancel: %d %s", r.Status, r.Body)
	}
	if r := h.do("GET", "/api/v1/orders/"+id, h.userToken(2), nil); r.Status != 404 {
		t.Fatalf("another user's read: %d %s", r.Status, r.Body)
	}
	if r := h.buy(2, aid, iid, 1); r.code() != "SOLD_OUT" {
		t.Fatalf("buy while sold out: %d %s", r.Status, r.Body)
	}
	r := h.do("POST", "/api/v1/orders/"+id+"/cancel", h.userToken(1), nil)
	if r.Status != 200 || r.json(t)["status"] != "CANCELLED" || r.json(t)["cancel_reason"] != "USER" {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	// A repeated cancel (the first answer lost on the way) gets the same answer.
	if r := h.do("POST", "/api/v1/orders/"+id+"/cancel", h.userToken(1), nil); r.Status != 200 || r.json(t)["status"] != "CANCELLED" {
		t.Fatalf("repeated cancel: %d %s", r.Status, r.Body)
	}
	if r := h.pay(id, "T1", 99900); r.Status != 409 || r.code() != "ORDER_CLOSED" {
		t.Fatalf("payment after cancel: %d %s", r.Status, r.Body)
	}
	if o := h.orderRow(id); o.Status != order.StatusCancelled || !o.StockReturned || o.TradeNo != "" {
		t.Fatalf("cancelled row %+v", o)
	}
	// The unit is back and the sold-out flag learns it; the quota is free:
	// the same user may buy again.
	h.buyWithin(2*time.Second, 1, aid, iid)
	h.drain()
	if st := h.stats(aid); st.Available != 0 || st.Pending != 1 || st.Cancelled != 1 || st.Returning != 0 || !st.Consistent {
		t.Fatalf("stats %+v", st)
	}
}

func TestPayCancelAndTimeoutRaceHasOneWinner(t *testing.T) {
	t.Parallel()
	h := setup(t)
	const n = 500
	aid, iid := h.publishActivity(activityOpts{stock: n, timeoutSec: 2})
	ids := h.buyN(aid, iid, 1, n)
	h.drain()
	var timeoutWins sync.Map
	var timerReports atomic.Int64
	h.timeouts.OnCancelled = func(o order.Order, _ time.Time) {
		if _, seen := timeoutWins.LoadOrStore(o.ID, true); !seen {
			timerReports.Add(1)
		}
	}
	// Wait until the first order is due, then hit every order with a payment,
	// a user cancel and the timer at once.
	first := h.orderRow(ids[0]).ExpireAt
	for _, id := range ids {
		if e := h.orderRow(id).ExpireAt; e.Before(first) {
			first = e
		}
	}
	time.Sleep(time.Until(first))
	h.runInBackground(h.timeouts.Service().Run)
	var paid, userCancelled sync.Map
	ops := make([]func(), 0, 2*n)
	for i, id := range ids {
		uid := int64(1 + i)
		ops = append(ops, func() {
			if r := h.pay(id, "T-"+id, 99900); r.Status == 200 {
				paid.Store(atoi(id), true)
			} else if r.Status != 409 {
				t.Errorf("pay %s: %d %s", id, r.Status, r.Body)
			}
		}, func() {
			if r := h.do("POST", "/api/v1/orders/"+id+"/cancel", h.userToken(uid), nil); r.Status == 200 {
				userCancelled.Store(atoi(id), true)
			} else if r.Status != 409 {
				t.Errorf("cancel %s: %d %s", id, r.Status, r.Body)
			}
		})
	}
	rand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	parallel(len(ops), 32, func(i int) { ops[i]() })
	// Let the timers finish what is left.
	deadline := time.Now().Add(10 * time.Second)
	for h.countRows("activity_id = $1 AND status = 'PENDING'", aid) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// The timer reports its winners after their stock return: wait for the
	// reports of every order its reason says it cancelled.
	for timerReports.Load() < h.countRows("activity_id = $1 AND cancel_reason = 'TIMEOUT'", aid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var nPaid, nUser, nTimeout int64
	for _, id := range ids {
		oid := atoi(id)
		_, p := paid.Load(oid)
		_, u := userCancelled.Load(oid)
		_, tw := timeoutWins.Load(oid)
		wins := btoi(p) + btoi(u) + btoi(tw)
		o := h.orderRow(id)
		switch {
		case wins != 1:
			t.Errorf("order %s: pay %v, user cancel %v, timeout %v: want exactly one winner", id, p, u, tw)
		case p && o.Status != order.StatusPaid, u && (o.Status != order.StatusCancelled || o.CancelReason != order.CancelUser),
			tw && (o.Status != order.StatusCancelled || o.CancelReason != order.CancelTimeout):
			t.Errorf("order %s ended %s/%s, which does not match its winner", id, o.Status, o.CancelReason)
		case o.Status == order.StatusCancelled && !o.StockReturned:
			t.Errorf("order %s cancelled without its stock returned", id)
		}
		nPaid += btoi(p)
		nUser += btoi(u)
		nTimeout += btoi(tw)
	}
	t.Logf("winners: %d paid, %d user cancels, %d timeouts", nPaid, nUser, nTimeout)
	st := h.stats(aid)
	if st.Paid != nPaid || st.Cancelled != nUser+nTimeout || st.Available != nUser+nTimeout || st.Pending != 0 || !st.Consistent {
		t.Fatalf("stats %+v; want paid %d, available = cancelled = %d", st, nPaid, nUser+nTimeout)
	}
}

func btoi(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// checkTimeliness buys n orders with a 2 s payment timeout through a running
// worker and checks every one is cancelled by its timer, none early, p99
// lateness under 1 s.
func checkTimeliness(t *testing.T, h *harness, n int) {
	aid, iid := h.publishActivity(activityOpts{stock: int64(n), timeoutSec: 2})
	var cancelledBy sync.Map
	var told atomic.Int64
	h.timeouts.OnCancelled = func(o order.Order, at time.Time) {
		if _, seen := cancelledBy.LoadOrStore(o.ID, at); !seen {
			told.Add(1)
		}
	}
	h.runInBackground(h.persister.Service().Run)
	h.runInBackground(h.timeouts.Service().Run)
	ids := h.buyN(aid, iid, 1, n)
	deadline := time.Now().Add(20 * time.Second)
	// The timer reports a batch after its cancel (UPDATE and stock return)
	// has finished, so wait for both the rows and the reports.
	for h.countRows("activity_id = $1 AND status = 'CANCELLED' AND stock_returned", aid) < int64(n) || told.Load() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders cancelled, %d reported by the timer, in time",
				h.countRows("activity_id = $1 AND status = 'CANCELLED'", aid), n, told.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows, err := h.pool.Query(context.Background(),
		`SELECT id, cancelled_at - expire_at, cancel_reason FROM orders WHERE activity_id = $1`, aid)
	if err != nil {
		t.Fatal(err)
	}
	var late []time.Duration
	for rows.Next() {
		var id int64
		var d time.Duration
		var reason string
		if err := rows.Scan(&id, &d, &reason); err != nil {
			t.Fatal(err)
		}
		if d < 0 {
			t.Errorf("order %d cancelled %v before its expire_at", id, -d)
		}
		if _, ok := cancelledBy.Load(id); !ok || reason != "TIMEOUT" {
			t.Errorf("order %d not cancelled by its timer (reason %s)", id, reason)
		}
		late = append(late, d)
	}
	if len(late) != len(ids) {
		t.Fatalf("%d rows, want %d", len(late), len(ids))
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	p50, p99, worst := percentile(late, 50), percentile(late, 99), late[len(late)-1]
	t.Logf("payment timeout lateness over %d orders: p50 %v, p99 %v, max %v", n, p50, p99, worst)
	if p99 >= time.Second {
		t.Errorf("p99 lateness %v, want < 1s", p99)
	}
	if st := h.stats(aid); st.Available != int64(n) || st.Cancelled != int64(n) || !st.Consistent {
		t.Fatalf("stats %+v", st)
	}
}

func TestPaymentTimeoutsAreOnTime(t *testing.T) {
	t.Parallel()
	h := setup(t)
	if !h.timeouts.Scheduled() {
		t.Fatal("the embedded server should schedule messages")
	}
	checkTimeliness(t, h, 1000)
}

func TestPaymentTimeoutsFallbackWithoutSchedules(t *testing.T) {
	t.Parallel()
	// The embedded server with schedules refused: the delayed-redelivery path.
	h := setupWith(t, setupOpts{noSchedules: true})
	if h.timeouts.Scheduled() {
		t.Fatal("DisableSchedules must not schedule")
	}
	checkTimeliness(t, h, 300)
}

// TestPaymentTimeoutsOnOldNATS runs the timeliness check against a real
// server without message schedules (nats-server < 2.12), whose stream config
// silently drops AllowMsgSchedules. .ci/run sets SECKILL_TEST_OLD_NATS_URL
// when such a server answers.
func TestPaymentTimeoutsOnOldNATS(t *testing.T) {
	url := os.Getenv("SECKILL_TEST_OLD_NATS_URL")
	if url == "" {
		t.Skip("SECKILL_TEST_OLD_NATS_URL not set")
	}
	t.Parallel()
	h := setupWith(t, setupOpts{broker: ordertest.NewExternalBroker(t, url)})
	if h.timeouts.Scheduled() {
		t.Fatal("the old server reported schedules; expected the fallback")
	}
	checkTimeliness(t, h, 300)
}

func TestExactlyOnceReturnAfterCrashBetweenUpdateAndReturn(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 2})
	id := h.buyN(aid, iid, 1, 1)[0]
	h.drain()
	var crashed atomic.Bool
	h.canceller.AfterUpdate = func([]order.Order) error {
		crashed.Store(true)
		return fmt.Errorf("killed between UPDATE and stock return")
	}
	r := h.do("POST", "/api/v1/orders/"+id+"/cancel", h.userToken(1), nil)
	h.canceller.AfterUpdate = nil
	if r.Status != 200 || !crashed.Load() {
		t.Fatalf("cancel: %d %s (crash hook ran: %v)", r.Status, r.Body, crashed.Load())
	}
	if st := h.stats(aid); st.Available != 1 || st.Returning != 1 || st.Cancelled != 1 {
		t.Fatalf("after the crash: %+v, want the unit still out", st)
	}
	time.Sleep(150 * time.Millisecond) // past ReturnAfter
	ctx := context.Background()
	if _, retried, err := h.sweeper.RunOnce(ctx); err != nil || retried != 1 {
		t.Fatalf("sweeper retried %d (%v), want 1", retried, err)
	}
	// More retries, timers and sweeps racing on the same order change nothing.
	o := h.orderRow(id)
	parallel(20, 20, func(i int) {
		switch i % 3 {
		case 0:
			_ = h.canceller.ReturnStock(ctx, []order.Order{o})
		case 1:
			_, _ = h.canceller.Cancel(ctx, []int64{o.ID}, order.CancelTimeout, false)
		default:
			_, _, _ = h.sweeper.RunOnce(ctx)
		}
	})
	st := h.stats(aid)
	if st.Available != 2 || st.Returning != 0 || st.Cancelled != 1 || !st.Consistent {
		t.Fatalf("after sweeping: %+v, want the unit back exactly once", st)
	}
	if o := h.orderRow(id); !o.StockReturned {
		t.Fatalf("stock_returned not recorded: %+v", o)
	}
}

func TestSweeperCancelsWhenTimersAreDown(t *testing.T) {
	t.Parallel()
	h := setup(t)
	const n = 50
	aid, iid := h.publishActivity(activityOpts{stock: n, timeoutSec: 1})
	h.buyN(aid, iid, 1, n)
	h.drain() // timers are scheduled, but no timeout consumer runs: the worker is down
	var last time.Time
	if err := h.pool.QueryRow(context.Background(), `SELECT max(expire_at) FROM orders WHERE activity_id = $1`, aid).Scan(&last); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(last) + 200*time.Millisecond)
	if c := h.countRows("activity_id = $1 AND status = 'PENDING'", aid); c != n {
		t.Fatalf("%d pending before the worker returns, want %d", c, n)
	}
	// The worker comes back: its sweeper (interval 200ms, grace 100ms) must
	// close every overdue order within one interval.
	back := time.Now()
	h.runInBackground(h.sweeper.Service().Run)
	for h.countRows("activity_id = $1 AND status = 'CANCELLED' AND stock_returned", aid) < n {
		if time.Since(back) > time.Second {
			t.Fatalf("sweeper left %d orders open after %v", h.countRows("activity_id = $1 AND status = 'PENDING'", aid), time.Since(back))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("sweeper closed %d overdue orders %v after the worker returned", n, time.Since(back))
	if st := h.stats(aid); st.Available != n || st.Cancelled != n || !st.Consistent {
		t.Fatalf("stats %+v", st)
	}
}

func TestRedisFlushedMidSale(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 50})
	ids := h.buyN(aid, iid, 1, 20)
	h.drain()
	for _, id := range ids[:2] { // users 1 and 2 cancel
		uid := int64(1)
		if id == ids[1] {
			uid = 2
		}
		if r := h.do("POST", "/api/v1/orders/"+id+"/cancel", h.userToken(uid), nil); r.Status != 200 {
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}
	}
	h.flushItem()
	// Never sell from missing state.
	for u := int64(100); u < 110; u++ {
		if r := h.buy(u, aid, iid, 1); r.Status != 503 || r.code() != "UNAVAILABLE" {
			t.Fatalf("buy with Redis state lost: %d %s, want 503", r.Status, r.Body)
		}
	}
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := h.recovery.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("item not rebuilt")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := h.stats(aid); st.Available != 32 || st.Pending != 18 || !st.Consistent {
		t.Fatalf("rebuilt stats %+v, want available 32", st)
	}
	// Holders are still limited; the users who cancelled may buy again.
	if r := h.buy(5, aid, iid, 1); r.code() != "LIMIT_EXCEEDED" {
		t.Fatalf("holder after rebuild: %d %s", r.Status, r.Body)
	}
	var accepted atomic.Int64
	parallel(100, 32, func(i int) {
		uid := int64(200 + i)
		if i < 2 {
			uid = int64(1 + i)
		}
		if r := h.buy(uid, aid, iid, 1); r.Status == 202 {
			accepted.Add(1)
		} else if r.code() != "SOLD_OUT" {
			t.Errorf("buy after rebuild: %d %s", r.Status, r.Body)
		}
	})
	if accepted.Load() != 32 {
		t.Fatalf("%d sold after the rebuild, want exactly the remaining 32", accepted.Load())
	}
	h.drain()
	if st := h.stats(aid); st.Available != 0 || st.Pending != 50 || !st.Consistent {
		t.Fatalf("final stats %+v", st)
	}
}

// flushItem deletes every Redis key of the test except the leases, as a
// Redis restart without persistence would.
func (h *harness) flushItem() {
	ctx := context.Background()
	iter := h.rdb.Scan(ctx, 0, h.keys.Prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); !containsAny(k, "{sem:", ":node:") {
			h.rdb.Del(ctx, k)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if len(sub) <= len(s) && (func() bool {
			for i := 0; i+len(sub) <= len(s); i++ {
				if s[i:i+len(sub)] == sub {
					return true
				}
			}
			return false
		})() {
			return true
		}
	}
	return false
}

// TestRedisRestartFromAOFFencesUntilRebuilt kills a Redis that keeps an
// append-only file (fsync every second) and starts it again on the same
// file. Its state may miss the last second, so the gateway must not sell
// from it: every connection to the new server fences the items, buys get
// 503, and recovery rebuilds them from PostgreSQL before selling again.
func TestRedisRestartFromAOFFencesUntilRebuilt(t *testing.T) {
	t.Parallel()
	srv := stocktest.StartServer(t, "--appendonly", "yes", "--appendfsync", "everysec")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1,
		OnConnect: stock.RestartHook(stock.Keys{Prefix: "sk"}, testLogger(t))})
	t.Cleanup(func() { _ = rdb.Close() })
	h := setupWith(t, setupOpts{rdb: rdb})
	aid, iid := h.publishActivity(activityOpts{stock: 30})
	h.buyN(aid, iid, 1, 10)
	h.drain()
	time.Sleep(1100 * time.Millisecond) // let the append-only file catch up

	srv.Stop() // kill -9
	srv.Start()
	for u := int64(100); u < 105; u++ {
		if r := h.buy(u, aid, iid, 1); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("buy right after the restart: %d %s, want 503 until rebuilt", r.Status, r.Body)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := h.recovery.RunOnce(context.Background())
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rebuilt: %d (%v)", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var accepted atomic.Int64
	parallel(40, 16, func(i int) {
		if r := h.buy(int64(200+i), aid, iid, 1); r.Status == http.StatusAccepted {
			accepted.Add(1)
		}
	})
	if accepted.Load() != 20 {
		t.Fatalf("%d sold after the rebuild, want exactly the remaining 20", accepted.Load())
	}
	h.drain()
	if st := h.stats(aid); st.Pending != 30 || st.Available != 0 || !st.Consistent {
		t.Fatalf("stats %+v", st)
	}
}

// TestCancelOfAFencedItemIsReturnedAfterTheRebuild replays the race the
// chaos run found: after a Redis restart an item is fenced; the rebuild
// reads PostgreSQL (the order still PENDING), a cancel commits, then the
// rebuild writes Redis counting the order as held. The cancel's stock return
// must wait for the rebuild (the fenced item refuses it) and the sweeper
// must then return the unit, exactly once.
func TestCancelOfAFencedItemIsReturnedAfterTheRebuild(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 5})
	ids := h.buyN(aid, iid, 1, 2)
	h.drain()
	ctx := context.Background()
	if _, err := h.stock.CheckRestart(ctx); err != nil { // records this server's run_id
		t.Fatal(err)
	}
	h.rdb.Set(ctx, h.keys.RunID(), "run-id-before-the-restart", 0)
	if fenced, err := h.stock.CheckRestart(ctx); err != nil || !fenced {
		t.Fatalf("fence: %v %v", fenced, err)
	}
	item, ok, err := order.NewCatalog(h.store, time.Millisecond).Item(ctx, atoi(aid), atoi(iid))
	if err != nil || !ok {
		t.Fatal(err)
	}
	uidOf := map[string]int64{ids[0]: 1, ids[1]: 2}
	first := h.orderRow(ids[0])
	// The rebuild's read: both orders live.
	held := map[int64]int64{uidOf[ids[0]]: 1, uidOf[ids[1]]: 1}
	// The cancel commits in between.
	if r := h.do("POST", "/api/v1/orders/"+ids[0]+"/cancel", h.userToken(first.UserID), nil); r.Status != 200 {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	if o := h.orderRow(ids[0]); o.StockReturned {
		t.Fatal("units returned into a fenced item")
	}
	// The rebuild's write, from its earlier read.
	if created, err := h.stock.Rebuild(ctx, stock.ItemState{Held: held, Meta: stock.ItemMeta{
		ActivityID: item.ActivityID, ItemID: item.ItemID, Total: item.Stock, PriceCents: item.PriceCents,
		StartAt: item.StartAt, EndAt: item.EndAt, PerUserLimit: item.PerUserLimit, PayTimeout: item.PayTimeout}}); err != nil || !created {
		t.Fatalf("rebuild: %v %v", created, err)
	}
	time.Sleep(150 * time.Millisecond) // past the sweeper's ReturnAfter
	for i := 0; i < 3; i++ {
		if _, _, err := h.sweeper.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := h.stats(aid); st.Available != 4 || st.Pending != 1 || st.Returning != 0 || !st.Consistent {
		t.Fatalf("stats %+v; want the cancelled unit back exactly once (available 4)", st)
	}
	// And the buyer's quota is free again.
	if r := h.buy(first.UserID, aid, iid, 1); r.Status != 202 {
		t.Fatalf("buy after the return: %d %s", r.Status, r.Body)
	}
}
