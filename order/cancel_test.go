package order_test

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// cancelFixture is one published item with n persisted PENDING orders, one
// unit each, bought through the real buy script.
type cancelFixture struct {
	store  *order.Store
	stock  *stock.Store
	c      *order.Canceller
	orders []order.Order
	aid    int64
	iid    int64
}

func newCancelFixture(t *testing.T, units int64, n int, expire time.Duration) *cancelFixture {
	t.Helper()
	ctx := t.Context()
	rdb, keys := stocktest.New(t)
	f := &cancelFixture{store: newTestStore(t), stock: stock.NewStore(rdb, keys)}
	f.c = order.NewCanceller(slog.New(slog.NewTextHandler(io.Discard, nil)), f.store, f.stock)
	now := time.Now()
	a, err := f.store.CreateActivity(ctx, order.Activity{Name: "cancel", StartAt: now.Add(-time.Minute),
		EndAt: now.Add(time.Hour), PayTimeout: time.Minute, PerUserLimit: 1,
		Items: []order.Item{{Name: "phone", PriceCents: 100, Stock: units}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := order.NewAdmin(f.store, f.stock).Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	f.aid, f.iid = a.ID, a.Items[0].ID
	for i := range n {
		r, err := f.stock.Buy(ctx, stock.BuyRequest{ActivityID: f.aid, ItemID: f.iid, UserID: int64(1 + i),
			OrderID: idBase + int64(i), Quantity: 1})
		if err != nil {
			t.Fatal(err)
		}
		o := order.FromReservation(r.Reservation)
		o.ExpireAt = now.Add(expire)
		f.orders = append(f.orders, o)
	}
	if _, err := f.store.InsertOrders(ctx, f.orders); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *cancelFixture) available(t *testing.T) int64 {
	t.Helper()
	s, err := f.stock.Snapshot(t.Context(), f.aid, f.iid)
	if err != nil {
		t.Fatal(err)
	}
	return s.Available
}

// Many cancels of the same orders at once: each order has exactly one
// winner, and only the winner returns its unit.
func TestCancelConcurrentOneWinnerReturnsOnce(t *testing.T) {
	t.Parallel()
	const n, racers = 20, 8
	f := newCancelFixture(t, n, n, -time.Second)
	ids := make([]int64, n)
	for i, o := range f.orders {
		ids[i] = o.ID
	}
	var mu sync.Mutex
	wins := map[int64]int{}
	var wg sync.WaitGroup
	for r := range racers {
		wg.Go(func() {
			reason := order.CancelTimeout
			if r%2 == 0 {
				reason = order.CancelUser
			}
			won, err := f.c.Cancel(t.Context(), ids, reason, r%2 == 1)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			for _, o := range won {
				wins[o.ID]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if wins[id] != 1 {
			t.Errorf("order %d: %d winners, want 1", id, wins[id])
		}
	}
	if a := f.available(t); a != n {
		t.Fatalf("available %d after the cancels, want %d (each unit back once)", a, n)
	}
}

// A timeout cancel (dueOnly) never takes an order before its expire_at.
func TestCancelDueOnlyWaitsForExpireAt(t *testing.T) {
	t.Parallel()
	f := newCancelFixture(t, 3, 2, time.Hour)
	won, err := f.c.Cancel(t.Context(), []int64{f.orders[0].ID}, order.CancelTimeout, true)
	if err != nil || len(won) != 0 {
		t.Fatalf("timeout cancel before expire_at: won %d (%v), want 0", len(won), err)
	}
	if a := f.available(t); a != 1 {
		t.Fatalf("available %d, want 1: nothing returned", a)
	}
	won, err = f.c.Cancel(t.Context(), []int64{f.orders[0].ID}, order.CancelUser, false)
	if err != nil || len(won) != 1 || won[0].CancelReason != order.CancelUser {
		t.Fatalf("user cancel: %+v (%v)", won, err)
	}
}

// The user's cancel stands when the stock return after its UPDATE fails
// (the sweeper finishes the return), and repeating it answers the same.
func TestCancelByUserStandsWhenTheReturnFails(t *testing.T) {
	t.Parallel()
	f := newCancelFixture(t, 2, 1, time.Hour)
	orders := order.NewOrders(f.store, nil, f.c)
	o := f.orders[0]
	f.c.AfterUpdate = func([]order.Order) error { return errors.New("killed between UPDATE and stock return") }
	got, err := orders.CancelByUser(t.Context(), o.ID, o.UserID)
	f.c.AfterUpdate = nil
	if err != nil || got.Status != order.StatusCancelled || got.CancelReason != order.CancelUser {
		t.Fatalf("cancel with a failed return: %+v (%v), want it cancelled", got, err)
	}
	if row, err := f.store.Order(t.Context(), o.ID); err != nil || row.StockReturned {
		t.Fatalf("row %+v (%v): the return did not happen", row, err)
	}
	if a := f.available(t); a != 1 {
		t.Fatalf("available %d, want 1: the unit is still out", a)
	}
	if again, err := orders.CancelByUser(t.Context(), o.ID, o.UserID); err != nil || again.ID != o.ID {
		t.Fatalf("repeated cancel: %+v (%v)", again, err)
	}
	if _, err := orders.CancelByUser(t.Context(), o.ID, o.UserID+1); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("someone else's cancel: %v, want ErrNotFound", err)
	}
}
