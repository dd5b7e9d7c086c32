package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
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
		ids[i] = decode[api.BuyAccepted](h.t, r).OrderID.String()
	})
	if h.t.Failed() {
		h.t.FailNow()
	}
	return ids
}

func (h *harness) pay(orderID string, tradeNo string, amount int64) response {
	paidAt := time.Date(2026, 11, 11, 0, 1, 2, 0, time.UTC)
	body, err := json.Marshal(api.PaymentCallback{OrderID: h.id(orderID), TradeNo: tradeNo, AmountCents: &amount, PaidAt: &paidAt})
	if err != nil {
		h.t.Fatal(err)
	}
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
		{"bad signature", good, flipLastHex(sign(good)), 401, "INVALID_SIGNATURE"},
		{"signature of another body", good, sign(good + " "), 401, "INVALID_SIGNATURE"},
		{"signature not hex", good, "zz", 401, "INVALID_SIGNATURE"},
		{"signed with the auth secret", good, gatewaySignerFor(testSecret).Sign([]byte(good)), 401, "INVALID_SIGNATURE"},
		{"wrong amount", fmt.Sprintf(`{"order_id":%q,"trade_no":"T1","amount_cents":1}`, id), "", 400, "AMOUNT_MISMATCH"},
		{"unknown order", `{"order_id":"123456789","trade_no":"T1","amount_cents":99900}`, "", 404, "NOT_FOUND"},
		{"malformed body", `{"order_id":`, "", 400, "INVALID_REQUEST"},
		{"missing amount", fmt.Sprintf(`{"order_id":%q,"trade_no":"T1"}`, id), "", 400, "INVALID_REQUEST"},
		{"missing trade", fmt.Sprintf(`{"order_id":%q,"amount_cents":99900}`, id), "", 400, "INVALID_REQUEST"},
		// One spelling per id: the order's id with a leading zero is not it.
		{"order id with leading zero", fmt.Sprintf(`{"order_id":"0%s","trade_no":"T1","amount_cents":99900}`, id), "", 400, "INVALID_REQUEST"},
		{"order id with plus", fmt.Sprintf(`{"order_id":"+%s","trade_no":"T1","amount_cents":99900}`, id), "", 400, "INVALID_REQUEST"},
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

	if r := h.pay(id, "T1", 99900); r.Status != 200 || decode[api.Order](t, r).Status != api.OrderPaid {
		t.Fatalf("pay: %d %s", r.Status, r.Body)
	}
	if r := h.pay(id, "T1", 99900); r.Status != 200 || decode[api.Order](t, r).Status != api.OrderPaid {
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

// flipLastHex returns sig with its last hex digit changed, so it is never
// the valid signature (replacing the tail with a constant was, once in 256
// runs, the signature itself).
func flipLastHex(sig string) string {
	last := byte('0')
	if sig[len(sig)-1] == '0' {
		last = '1'
	}
	return sig[:len(sig)-1] + string(last)
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
	if o := decode[api.Order](t, r); r.Status != 200 || o.Status != api.OrderCancelled || o.CancelReason == nil || *o.CancelReason != api.CancelUser {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	// A repeated cancel (the first answer lost on the way) gets the same answer.
	if r := h.do("POST", "/api/v1/orders/"+id+"/cancel", h.userToken(1), nil); r.Status != 200 || decode[api.Order](t, r).Status != api.OrderCancelled {
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
	time.Sleep(time.Until(first)) // time is the subject: the race starts when the timers are due
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
	// Let the timers finish what is left. The timer reports its winners
	// after their UPDATE and returns their stock beside its loop: wait for
	// the reports of every order its reason says it cancelled, and for
	// every return to land.
	cluster.Eventually(t, 10*time.Second, func() bool {
		return h.countRows("activity_id = $1 AND status = 'PENDING'", aid) == 0
	})
	cluster.Eventually(t, 10*time.Second, func() bool {
		return timerReports.Load() >= h.countRows("activity_id = $1 AND cancel_reason = 'TIMEOUT'", aid)
	})
	cluster.Eventually(t, 10*time.Second, func() bool {
		return h.countRows("activity_id = $1 AND status = 'CANCELLED' AND NOT stock_returned", aid) == 0
	})
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
	// Recovery rebuilds once the loss has lasted its Settle (300ms).
	cluster.Eventually(t, 5*time.Second, func() bool {
		n, err := h.recovery.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
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
	reg := stock.NewRegistry()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1,
		OnConnect: stock.ShardHook(reg, stock.Keys{Prefix: "sk"}, testLogger(t))})
	t.Cleanup(func() { _ = rdb.Close() })
	h := setupWith(t, setupOpts{rdb: rdb, registry: reg})
	aid, iid := h.publishActivity(activityOpts{stock: 30})
	h.buyN(aid, iid, 1, 10)
	h.drain()
	// Time is the subject: appendfsync everysec writes the file within a second.
	time.Sleep(1100 * time.Millisecond)

	srv.Stop() // kill -9
	srv.Start()
	for u := int64(100); u < 105; u++ {
		if r := h.buy(u, aid, iid, 1); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("buy right after the restart: %d %s, want 503 until rebuilt", r.Status, r.Body)
		}
	}
	cluster.Eventually(t, 10*time.Second, func() bool {
		n, err := h.recovery.RunOnce(context.Background())
		return err == nil && n == 1
	})
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
	// The state of another server instance (a restart from a stale file).
	h.rdb.HSet(ctx, h.keys.Item(atoi(aid), atoi(iid)), "rid", "run-id-before-the-restart")
	// A store of its own: h.stock may have checked this server already and
	// skip it while its run_id is unchanged.
	if fenced, err := stock.NewStore(h.rdb, h.keys, stock.WithRegistry(h.stock.Registry())).CheckShards(ctx); err != nil || fenced != 1 {
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
	// The sweeper retries the return once it is ReturnAfter (100ms) old;
	// further passes must not return it again.
	cluster.Eventually(t, 5*time.Second, func() bool {
		_, retried, err := h.sweeper.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return retried == 1
	})
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

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
