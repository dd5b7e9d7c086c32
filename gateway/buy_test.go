package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock"
)

// parallel runs f(i) for i in [0,n) on `workers` goroutines.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}

func TestRushSellsExactlyTheStock(t *testing.T) {
	t.Parallel()
	h := setup(t)
	const buyers, stockN = 2000, 100
	aid, iid := h.publishActivity(activityOpts{stock: stockN})

	var mu sync.Mutex
	codes := map[int]int{}
	errCodes := map[string]int{}
	orderIDs := map[string]bool{}
	parallel(buyers, 64, func(i int) {
		r := h.buy(int64(1000+i), aid, iid, 1)
		mu.Lock()
		defer mu.Unlock()
		codes[r.Status]++
		if r.Status == http.StatusAccepted {
			a := decode[api.BuyAccepted](t, r)
			if a.Status != api.OrderPending {
				t.Errorf("202 status = %v", a.Status)
			}
			orderIDs[a.OrderID.String()] = true
		} else {
			errCodes[r.code()]++
		}
	})
	if codes[http.StatusAccepted] != stockN || codes[http.StatusConflict] != buyers-stockN || errCodes["SOLD_OUT"] != buyers-stockN {
		t.Fatalf("statuses %v codes %v; want %d×202 and %d×409 SOLD_OUT", codes, errCodes, stockN, buyers-stockN)
	}
	if len(orderIDs) != stockN {
		t.Fatalf("%d distinct order ids, want %d", len(orderIDs), stockN)
	}

	h.drain()
	if n := h.countRows("activity_id = $1", aid); n != stockN {
		t.Fatalf("%d rows in PostgreSQL, want %d", n, stockN)
	}
	for id := range orderIDs {
		if n := h.countRows("id = $1 AND status = 'PENDING'", id); n != 1 {
			t.Fatalf("order %s: %d PENDING rows, want 1", id, n)
		}
	}
	st := h.stats(aid)
	if st.Available != 0 || st.Pending != stockN || st.Reserved != 0 || !st.Consistent {
		t.Fatalf("stats %+v; want available 0, pending %d, consistent", st, stockN)
	}
	left, err := h.rdb.HGet(context.Background(), h.keys.Item(atoi(aid), atoi(iid)), "stock").Int64()
	if err != nil || left != 0 {
		t.Fatalf("redis stock = %d (%v), want 0", left, err)
	}
}

func atoi(s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return v
}

func TestDoubleClickGetsOneOrder(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 10, limit: 1})
	var accepted, limited, other atomic.Int64
	parallel(50, 50, func(int) {
		r := h.buy(7, aid, iid, 1)
		switch {
		case r.Status == http.StatusAccepted:
			accepted.Add(1)
		case r.Status == http.StatusConflict && r.code() == "LIMIT_EXCEEDED":
			limited.Add(1)
		default:
			other.Add(1)
			t.Errorf("unexpected %d %s", r.Status, r.Body)
		}
	})
	if accepted.Load() != 1 || limited.Load() != 49 {
		t.Fatalf("accepted %d, limited %d, other %d; want 1/49/0", accepted.Load(), limited.Load(), other.Load())
	}
	h.drain()
	if st := h.stats(aid); st.Available != 9 || st.Pending != 1 || !st.Consistent {
		t.Fatalf("stats %+v", st)
	}
}

func TestIdempotencyKeyReturnsTheSameOrder(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 5, limit: 1})
	first := h.buy(8, aid, iid, 1, "Idempotency-Key", "retry-1")
	second := h.buy(8, aid, iid, 1, "Idempotency-Key", "retry-1")
	if first.Status != 202 || second.Status != 202 {
		t.Fatalf("statuses %d %s / %d %s, want 202 twice", first.Status, first.Body, second.Status, second.Body)
	}
	if a, b := decode[api.BuyAccepted](t, first).OrderID, decode[api.BuyAccepted](t, second).OrderID; a != b {
		t.Fatalf("retry got order %v, first got %v", b, a)
	}
	// A different key is a new buy: limit 1 refuses it.
	if r := h.buy(8, aid, iid, 1, "Idempotency-Key", "retry-2"); r.Status != 409 || r.code() != "LIMIT_EXCEEDED" {
		t.Fatalf("new key: %d %s, want 409 LIMIT_EXCEEDED", r.Status, r.Body)
	}
	h.drain()
	// After persisting, the retry still answers with the same order.
	third := h.buy(8, aid, iid, 1, "Idempotency-Key", "retry-1")
	if third.Status != 202 || decode[api.BuyAccepted](t, third).OrderID != decode[api.BuyAccepted](t, first).OrderID {
		t.Fatalf("retry after persist: %d %s", third.Status, third.Body)
	}
	if st := h.stats(aid); st.Available != 4 || st.Pending != 1 || !st.Consistent {
		t.Fatalf("stats %+v", st)
	}
}

func TestOrderIsReadableRightAfterThe202(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 5, limit: 2, timeoutSec: 60})
	r := h.buy(9, aid, iid, 2)
	if r.Status != 202 {
		t.Fatalf("buy: %d %s", r.Status, r.Body)
	}
	id := decode[api.BuyAccepted](t, r).OrderID.String()
	check := func(when string) {
		got := h.do("GET", "/api/v1/orders/"+id, h.userToken(9), nil)
		if got.Status != 200 {
			t.Fatalf("%s: GET order %d %s", when, got.Status, got.Body)
		}
		o := decode[api.Order](t, got)
		if o.OrderID.String() != id || o.Status != api.OrderPending || o.Quantity != 2 ||
			o.AmountCents != 199800 || o.UserID != 9 || o.ItemID.String() != iid {
			t.Fatalf("%s: order %s", when, got.Body)
		}
		if d := o.ExpireAt.Sub(o.CreatedAt); d != 60*time.Second {
			t.Fatalf("%s: expire_at - created_at = %v, want 60s", when, d)
		}
		if o := h.do("GET", "/api/v1/orders/"+id, h.userToken(10), nil); o.Status != 404 {
			t.Fatalf("%s: another user's GET = %d, want 404", when, o.Status)
		}
	}
	check("before persist")
	if n := h.countRows("id = $1", id); n != 0 {
		t.Fatalf("row exists before the worker ran")
	}
	h.drain()
	check("after persist")
}

func TestGatewayDeathBeforePublishLosesNothing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 3})
	died := errors.New("gateway killed")
	var reserved atomic.Int64
	h.hooks.BeforePublish = func(_ context.Context, r stock.Reservation) error {
		reserved.Store(r.OrderID)
		return died
	}
	if r := h.buy(11, aid, iid, 1); r.Status != 503 || r.code() != "UNAVAILABLE" {
		t.Fatalf("buy with dying gateway: %d %s, want 503", r.Status, r.Body)
	}
	h.hooks.BeforePublish = nil
	// The persister has nothing: the message was never published.
	h.drain()
	if n := h.countRows("activity_id = $1", aid); n != 0 {
		t.Fatalf("%d rows before reconciling", n)
	}
	st := h.stats(aid)
	if st.Reserved != 1 || st.Available != 2 || !st.Consistent {
		t.Fatalf("stats before reconciling %+v", st)
	}
	// The reservation is left alone until it is older than the reconciler's
	// grace (200 ms), then inserted by exactly one pass.
	cluster.Eventually(t, 10*time.Second, func() error {
		n, err := h.reconciler.RunOnce(context.Background())
		if err != nil || n > 1 {
			t.Fatalf("reconciler inserted %d (%v), want 0 or 1", n, err)
		}
		if n == 0 {
			return errors.New("the reconciler has not inserted the reserved order")
		}
		return nil
	})
	if c := h.countRows("id = $1 AND user_id = 11 AND status = 'PENDING'", reserved.Load()); c != 1 {
		t.Fatalf("reserved order %d has %d rows", reserved.Load(), c)
	}
	// A second pass (another worker) changes nothing.
	if n, err := h.reconciler.RunOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("second pass inserted %d (%v)", n, err)
	}
	// The rest of the stock still sells, exactly.
	for u := int64(20); u < 25; u++ {
		h.buy(u, aid, iid, 1)
	}
	h.drain()
	st = h.stats(aid)
	if st.Available != 0 || st.Pending != 3 || st.Reserved != 0 || !st.Consistent {
		t.Fatalf("final stats %+v", st)
	}
}

func TestPublishTwiceNeverResetsStock(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 10, limit: 3})
	if r := h.buy(5, aid, iid, 3); r.Status != 202 {
		t.Fatalf("buy: %d %s", r.Status, r.Body)
	}
	r := h.do("POST", "/admin/v1/activities/"+aid+"/publish", h.admin, nil)
	if r.Status != 409 || r.code() != "ALREADY_PUBLISHED" {
		t.Fatalf("second publish: %d %s", r.Status, r.Body)
	}
	left, _ := h.rdb.HGet(context.Background(), h.keys.Item(atoi(aid), atoi(iid)), "stock").Int64()
	if left != 7 {
		t.Fatalf("stock after second publish = %d, want 7", left)
	}
}

// countingHook counts every command sent to Redis.
type countingHook struct{ n atomic.Int64 }

func (c *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

func TestSoldOutIsAnsweredLocallyAndLearnedBack(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 1})
	if r := h.buy(1, aid, iid, 1); r.Status != 202 {
		t.Fatalf("first buy: %d", r.Status)
	}
	if r := h.buy(2, aid, iid, 1); r.code() != "SOLD_OUT" {
		t.Fatalf("second buy: %d %s", r.Status, r.Body)
	}
	hook := &countingHook{}
	h.rdb.AddHook(hook)
	h.soldOutPaused(func() {
		for u := int64(3); u < 103; u++ {
			if r := h.buy(u, aid, iid, 1); r.Status != 409 || r.code() != "SOLD_OUT" {
				t.Fatalf("buy after sell-out: %d %s", r.Status, r.Body)
			}
		}
		if n := hook.n.Load(); n != 0 {
			t.Fatalf("100 sold-out answers sent %d Redis commands, want 0", n)
		}
	})
	// A unit comes back (a cancelled order): the gateway learns within a second.
	h.rdb.HIncrBy(context.Background(), h.keys.Item(atoi(aid), atoi(iid)), "stock", 1)
	h.buyWithin(1500*time.Millisecond, 200, aid, iid)
}

// buyWithin retries a one-unit buy until it is accepted, failing the test
// if that takes longer than within.
func (h *harness) buyWithin(within time.Duration, uid int64, aid, iid string) {
	h.t.Helper()
	cluster.Eventually(h.t, within, func() error {
		if r := h.buy(uid, aid, iid, 1); r.Status != 202 {
			return fmt.Errorf("user %d: buy not accepted: %d %s", uid, r.Status, r.Body)
		}
		return nil
	})
}

func TestIdempotentResendAfterSellOutGetsItsOrder(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 2})
	first := h.buy(1, aid, iid, 1, "Idempotency-Key", "k1")
	if first.Status != 202 {
		t.Fatalf("first buy: %d %s", first.Status, first.Body)
	}
	h.buy(2, aid, iid, 1)
	if r := h.buy(3, aid, iid, 1); r.code() != "SOLD_OUT" {
		t.Fatalf("after sell-out: %d %s", r.Status, r.Body)
	}
	// The gateway now knows the item is sold out, yet the resend of an
	// accepted buy gets its 202 and order id back.
	again := h.buy(1, aid, iid, 1, "Idempotency-Key", "k1")
	if want := decode[api.BuyAccepted](t, first).OrderID; again.Status != 202 || decode[api.BuyAccepted](t, again).OrderID != want {
		t.Fatalf("resend after sell-out: %d %s, want 202 with order %v", again.Status, again.Body, want)
	}
	// Another key of the same user is still sold out.
	if r := h.buy(1, aid, iid, 1, "Idempotency-Key", "k2"); r.code() != "SOLD_OUT" {
		t.Fatalf("new key after sell-out: %d %s", r.Status, r.Body)
	}
}
