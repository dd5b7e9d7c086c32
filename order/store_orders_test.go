package order_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
)

// idBase is above 2^53, where float64 (and so JSON numbers) would lose
// digits; Snowflake ids live there.
const idBase = int64(1)<<60 + 12345

// pendingOrders returns n PENDING orders with ids first, first+1, ...
func pendingOrders(first int64, n int, itemID int64) []order.Order {
	created := time.Date(2026, 11, 11, 0, 0, 1, 123456000, time.UTC)
	out := make([]order.Order, n)
	for i := range out {
		out[i] = order.Order{
			ID: first + int64(i), ActivityID: 7, ItemID: itemID, UserID: 1000 + int64(i),
			Quantity: 1 + int64(i%3), AmountCents: 99900 * (1 + int64(i%3)),
			Status: order.StatusPending, CreatedAt: created, ExpireAt: created.Add(15 * time.Minute),
		}
	}
	return out
}

func countOrders(t *testing.T, s *order.Store) int64 {
	t.Helper()
	var n int64
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM orders`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStoreInsertOrdersIdempotent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	batch := pendingOrders(idBase, 5000, 12)

	steps := []struct {
		name      string
		orders    []order.Order
		wantNew   int64
		wantTotal int64
	}{
		{"new batch", batch, 5000, 5000},
		{"same batch again", batch, 0, 5000},
		{"half new", pendingOrders(idBase+2500, 5000, 12), 2500, 7500},
		{"repeats inside one batch", append(pendingOrders(idBase+7500, 3, 12), pendingOrders(idBase+7500, 3, 12)...), 3, 7503},
		{"largest batch", pendingOrders(idBase+10_000, 10_000, 12), 10_000, 17503},
		{"empty", nil, 0, 17503},
	}
	for _, st := range steps { // in order: each step builds on the last
		got, err := s.InsertOrders(ctx, st.orders)
		if err != nil {
			t.Fatalf("%s: InsertOrders: %v", st.name, err)
		}
		if got != st.wantNew {
			t.Errorf("%s: inserted %d, want %d", st.name, got, st.wantNew)
		}
		if total := countOrders(t, s); total != st.wantTotal {
			t.Errorf("%s: %d rows, want %d", st.name, total, st.wantTotal)
		}
	}
}

func TestStoreOrderRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	paidAt := time.Date(2026, 11, 11, 0, 1, 2, 0, time.UTC)
	cancelledAt := paidAt.Add(time.Minute)
	pending := pendingOrders(idBase, 1, 12)[0]
	pending.ID = 1<<63 - 1 // the largest int64 survives exactly
	paid := pendingOrders(idBase+1, 1, 12)[0]
	paid.Status, paid.PaidAt, paid.TradeNo = order.StatusPaid, &paidAt, "T123"
	cancelled := pendingOrders(idBase+2, 1, 13)[0]
	cancelled.Status, cancelled.CancelReason, cancelled.CancelledAt, cancelled.StockReturned =
		order.StatusCancelled, order.CancelUser, &cancelledAt, true

	want := []order.Order{pending, paid, cancelled}
	if n, err := s.InsertOrders(ctx, want); err != nil || n != 3 {
		t.Fatalf("InsertOrders = %d, %v; want 3, nil", n, err)
	}
	for _, w := range want {
		got, err := s.Order(ctx, w.ID)
		if err != nil {
			t.Fatalf("Order(%d): %v", w.ID, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("Order(%d) =\n%+v\nwant\n%+v", w.ID, got, w)
		}
	}
	if _, err := s.Order(ctx, idBase+99); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("Order(unknown) = %v, want ErrNotFound", err)
	}
}

func TestStoreInsertOrdersInvalidInsertsNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	batch := pendingOrders(idBase, 10, 12)
	batch[7].Status = "SHIPPED"

	if _, err := s.InsertOrders(ctx, batch); !errors.Is(err, order.ErrInvalid) {
		t.Fatalf("InsertOrders with a bad status = %v, want ErrInvalid", err)
	}
	if n := countOrders(t, s); n != 0 {
		t.Fatalf("%d rows after a rejected batch, want 0", n)
	}
}

func TestStoreExistingOrderIDsAndItemCounts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	now := time.Now()
	a, err := s.CreateActivity(ctx, activityAt("Counts", now, now.Add(time.Hour)), now)
	if err != nil {
		t.Fatal(err)
	}
	phone, caseItem := a.Items[0].ID, a.Items[1].ID

	// Ten orders on the phone with quantities 1,2,3,1,2,3,... and none on
	// the case; then move some of them along by hand.
	orders := pendingOrders(idBase, 10, phone)
	for i := range orders {
		orders[i].ActivityID = a.ID
	}
	// An order of another activity on the same item id must not be counted.
	stray := pendingOrders(idBase+100, 1, phone)
	stray[0].ActivityID = a.ID + 1000
	if _, err := s.InsertOrders(ctx, append(orders, stray...)); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := s.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Paid: ids +0 (q1), +1 (q2). Cancelled and returned: +2 (q3).
	// Cancelled, not returned: +3 (q1), +4 (q2). Pending: +5..+9 (q3,1,2,3,1).
	exec(`UPDATE orders SET status = 'PAID', paid_at = now(), trade_no = 'T' || id WHERE id = ANY($1)`,
		[]int64{idBase, idBase + 1})
	exec(`UPDATE orders SET status = 'CANCELLED', cancel_reason = 'TIMEOUT', cancelled_at = now(),
		stock_returned = (id = $2) WHERE id = ANY($1)`,
		[]int64{idBase + 2, idBase + 3, idBase + 4}, idBase+2)

	got, err := s.ItemCounts(ctx, a.ID)
	if err != nil {
		t.Fatalf("ItemCounts: %v", err)
	}
	want := map[int64]order.ItemCounts{
		phone:    {PendingUnits: 3 + 1 + 2 + 3 + 1, PaidUnits: 1 + 2, CancelledUnits: 3 + 1 + 2, ReturningUnits: 1 + 2, Orders: 10},
		caseItem: {},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ItemCounts =\n%+v\nwant\n%+v", got, want)
	}
	if got, err := s.ItemCounts(ctx, a.ID+1000); err != nil || len(got) != 0 {
		t.Fatalf("ItemCounts(unknown activity) = %v, %v; want empty", got, err)
	}

	ids := []int64{idBase, idBase + 9, idBase + 100, idBase + 10, 1, -5}
	exist, err := s.ExistingOrderIDs(ctx, ids)
	if err != nil {
		t.Fatalf("ExistingOrderIDs: %v", err)
	}
	wantExist := map[int64]bool{idBase: true, idBase + 9: true, idBase + 100: true}
	if !reflect.DeepEqual(exist, wantExist) {
		t.Fatalf("ExistingOrderIDs = %v, want %v", exist, wantExist)
	}
	if exist, err := s.ExistingOrderIDs(ctx, nil); err != nil || len(exist) != 0 {
		t.Fatalf("ExistingOrderIDs(nil) = %v, %v; want empty", exist, err)
	}
}

// BenchmarkInsertOrders measures the persister's write path: batches of
// 1,000 new PENDING orders, one statement each.
func BenchmarkInsertOrders(b *testing.B) {
	ctx := b.Context()
	s := newTestStore(b)
	const batchSize = 1000
	next := idBase
	for b.Loop() {
		b.StopTimer()
		batch := pendingOrders(next, batchSize, 12)
		next += batchSize
		b.StartTimer()
		n, err := s.InsertOrders(ctx, batch)
		if err != nil || n != batchSize {
			b.Fatalf("InsertOrders = %d, %v; want %d, nil", n, err, batchSize)
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "orders/s")
}
