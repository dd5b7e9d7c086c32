package stock_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

func TestBuyRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		now := time.Now()
		tests := []struct {
			name      string
			publish   bool
			edit      func(*stock.ItemMeta)
			held      int64 // units user 1 buys first
			quantity  int64
			want      error
			available int64
		}{
			{name: "not published", quantity: 1, want: stock.ErrNotPublished},
			{name: "not started", publish: true, quantity: 1, want: stock.ErrNotStarted,
				edit: func(m *stock.ItemMeta) { m.StartAt, m.EndAt = now.Add(time.Hour), now.Add(2*time.Hour) }},
			{name: "ended", publish: true, quantity: 1, want: stock.ErrEnded,
				edit: func(m *stock.ItemMeta) { m.StartAt, m.EndAt = now.Add(-2*time.Hour), now.Add(-time.Millisecond) }},
			{name: "limit exceeded by quantity", publish: true, quantity: 3, want: stock.ErrLimitExceeded,
				edit: func(m *stock.ItemMeta) { m.PerUserLimit = 2 }},
			{name: "limit reached", publish: true, held: 2, quantity: 1, want: stock.ErrLimitExceeded,
				edit: func(m *stock.ItemMeta) { m.PerUserLimit = 2 }},
			{name: "quantity larger than stock", publish: true, quantity: 2, want: stock.ErrSoldOut, available: 1,
				edit: func(m *stock.ItemMeta) { m.Total = 1 }},
			{name: "no stock", publish: true, quantity: 1, want: stock.ErrSoldOut, available: 0,
				edit: func(m *stock.ItemMeta) { m.Total = 0 }},
			{name: "sold out by earlier buys", publish: true, held: 3, quantity: 1, want: stock.ErrSoldOut, available: 0,
				edit: func(m *stock.ItemMeta) { m.Total = 3 }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				f := setupOn(t, top)
				m := meta()
				if tt.edit != nil {
					tt.edit(&m)
				}
				if tt.publish {
					f.warm(t, m)
				}
				if tt.held > 0 {
					r := buy(1)
					r.Quantity = tt.held
					if _, err := f.store.Buy(f.ctx, r); err != nil {
						t.Fatalf("setup buy: %v", err)
					}
				}
				before := f.dump(t)
				r := buy(1)
				r.Quantity = tt.quantity
				r.IdempotencyKey = "k1"
				res, err := f.store.Buy(f.ctx, r)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Buy err = %v, want %v", err, tt.want)
				}
				if res.Available != tt.available {
					t.Errorf("Available = %d, want %d", res.Available, tt.available)
				}
				if after := f.dump(t); after != before {
					t.Errorf("refused buy changed Redis:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			})
		}
	})
}

func TestBuyAcceptedWritesEverything(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		m.Total, m.PerUserLimit, m.PayTimeout = 3, 3, 60*time.Second
		f.warm(t, m)

		r := buy(hugeUser)
		r.Quantity = 2
		start := time.Now()
		res, err := f.store.Buy(f.ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if res.OrderID != r.OrderID || res.Duplicate || !res.ReservationFound || res.Available != 1 {
			t.Errorf("result = %+v", res)
		}
		rv := res.Reservation
		if rv.OrderID != r.OrderID || rv.ActivityID != testAID || rv.ItemID != testIID || rv.UserID != hugeUser ||
			rv.Quantity != 2 || rv.AmountCents != 2*99900 {
			t.Errorf("reservation = %+v", rv)
		}
		if d := rv.CreatedAt.Sub(start); d < -time.Second || d > time.Second {
			t.Errorf("CreatedAt %v is %v from local now; Redis server time expected", rv.CreatedAt, d)
		}
		if d := rv.ExpireAt.Sub(rv.CreatedAt); d != 60*time.Second {
			t.Errorf("ExpireAt - CreatedAt = %v, want 60s", d)
		}

		// The record in Redis is the documented JSON, ids as exact strings.
		raw := f.rdb.HGet(f.ctx, f.keys.Reservations(testAID, testIID), strconv.FormatInt(r.OrderID, 10)).Val()
		want := fmt.Sprintf(`{"order_id":"%d","activity_id":"%d","item_id":"%d","user_id":"%d","quantity":2,"amount_cents":199800,"created_ms":%d,"expire_ms":%d}`,
			r.OrderID, testAID, testIID, hugeUser, rv.CreatedAt.UnixMilli(), rv.ExpireAt.UnixMilli())
		if raw != want {
			t.Errorf("reservation JSON\n got %s\nwant %s", raw, want)
		}
		if got := f.rdb.HGet(f.ctx, f.keys.Buyers(testAID, testIID), strconv.FormatInt(hugeUser, 10)).Val(); got != "2" {
			t.Errorf("buyer units = %q, want 2", got)
		}
		score, err := f.rdb.ZScore(f.ctx, f.keys.ReservationTimes(testAID, testIID), strconv.FormatInt(r.OrderID, 10)).Result()
		if err != nil || int64(score) != rv.CreatedAt.UnixMilli() {
			t.Errorf("index score = %v, %v; want %d", score, err, rv.CreatedAt.UnixMilli())
		}

		// The last unit: stock reaches exactly 0, then nothing more is sold.
		if res, err := f.store.Buy(f.ctx, buy(2)); err != nil || res.Available != 0 {
			t.Fatalf("last unit: %+v, %v", res, err)
		}
		if res, err := f.store.Buy(f.ctx, buy(3)); !errors.Is(err, stock.ErrSoldOut) || res.Available != 0 {
			t.Fatalf("after the last unit: %+v, %v; want ErrSoldOut with 0 available", res, err)
		}
	})
}

func TestBuyIdempotentRetry(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		f.warm(t, meta())

		first := buy(7)
		first.IdempotencyKey = "click-1"
		res1, err := f.store.Buy(f.ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		before := f.dump(t)

		retry := first
		retry.OrderID = newOrderID() // a retry mints a new id; the first one must win
		res2, err := f.store.Buy(f.ctx, retry)
		if err != nil {
			t.Fatal(err)
		}
		if !res2.Duplicate || res2.OrderID != first.OrderID || !res2.ReservationFound ||
			res2.Reservation != res1.Reservation || res2.Available != 9 {
			t.Errorf("retry = %+v, want duplicate of %+v", res2, res1)
		}
		if after := f.dump(t); after != before {
			t.Errorf("duplicate changed Redis:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		ttl := f.rdb.TTL(f.ctx, f.keys.Idempotency(testAID, testIID, 7, "click-1")).Val()
		if ttl <= 23*time.Hour || ttl > 24*time.Hour {
			t.Errorf("idempotency TTL = %v, want the 24h default", ttl)
		}

		// Once the order is persisted and its reservation cleared, a retry still
		// names the same order, without a reservation.
		if err := f.store.ClearReservations(f.ctx, testAID, testIID, []int64{first.OrderID}); err != nil {
			t.Fatal(err)
		}
		res3, err := f.store.Buy(f.ctx, retry)
		if err != nil || !res3.Duplicate || res3.OrderID != first.OrderID || res3.ReservationFound {
			t.Errorf("retry after clear = %+v, %v", res3, err)
		}
		// Another key of the same user is a new buy.
		other := buy(7)
		other.IdempotencyKey = "click-2"
		if res, err := f.store.Buy(f.ctx, other); err != nil || res.Duplicate || res.Available != 8 {
			t.Errorf("new key = %+v, %v", res, err)
		}
	})
}

// TestBuySameOrderIDTwiceChangesNothing: go-redis resends a command (and
// a whole pipeline) after a read timeout, so the script may run twice for
// one call. The second run must answer like the first and change nothing,
// even with a per-user limit that would allow a second unit.
func TestBuySameOrderIDTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		m.PerUserLimit = 5
		f.warm(t, m)
		req := buy(7)
		req.Quantity = 2
		res1, err := f.store.Buy(f.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		before := f.dump(t)
		res2, err := f.store.Buy(f.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !res2.Duplicate || res2.OrderID != req.OrderID || !res2.ReservationFound || res2.Reservation != res1.Reservation {
			t.Errorf("resent call = %+v, want a duplicate of %+v", res2, res1)
		}
		if after := f.dump(t); after != before {
			t.Errorf("resent call changed Redis:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

func TestBuyRejectsBadInputBeforeRedis(t *testing.T) {
	t.Parallel()
	s := stock.NewStore(unreachable(t), stock.Keys{})
	for _, r := range []stock.BuyRequest{{OrderID: 1, Quantity: 0}, {OrderID: 1, Quantity: -1}, {OrderID: 0, Quantity: 1}} {
		if _, err := s.Buy(t.Context(), r); err == nil {
			t.Errorf("Buy(%+v) = nil error", r)
		}
	}
}

func TestBuyRedisDownIsNotABusinessOutcome(t *testing.T) {
	t.Parallel()
	s := stock.NewStore(unreachable(t), stock.Keys{})
	_, err := s.Buy(t.Context(), buy(1))
	if err == nil {
		t.Fatal("Buy against no Redis succeeded")
	}
	for _, b := range businessErrs {
		if errors.Is(err, b) {
			t.Fatalf("Buy against no Redis = %v, reported as %v", err, b)
		}
	}
}
