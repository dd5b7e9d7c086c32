package stock_test

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

func TestReservationJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := stock.Reservation{
		OrderID: 1859234923423424513, ActivityID: testAID, ItemID: testIID, UserID: hugeUser,
		Quantity: 2, AmountCents: 199800,
		CreatedAt: time.UnixMilli(1763000000123), ExpireAt: time.UnixMilli(1763000900123),
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"order_id":"1859234923423424513","activity_id":"9007199254740999","item_id":"9007199254741004",` +
		`"user_id":"4611686018427387946","quantity":2,"amount_cents":199800,"created_ms":1763000000123,"expire_ms":1763000900123}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var out stock.Reservation
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("round trip = %+v, %v; want %+v", out, err, in)
	}
}

func TestReservationsLifecycle(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		f.warm(t, meta())

		var placed []stock.Reservation
		for u := range int64(3) {
			res, err := f.store.Buy(f.ctx, buy(hugeUser+u))
			if err != nil {
				t.Fatal(err)
			}
			placed = append(placed, res.Reservation)
			time.Sleep(2 * time.Millisecond) // time is the subject: distinct created_ms, so "oldest first" is checkable
		}

		got, found, err := f.store.Reservation(f.ctx, testAID, testIID, placed[1].OrderID)
		if err != nil || !found || got != placed[1] {
			t.Errorf("Reservation = %+v, %v, %v; want %+v", got, found, err, placed[1])
		}
		if _, found, err := f.store.Reservation(f.ctx, testAID, testIID, newOrderID()); err != nil || found {
			t.Errorf("unknown order: found %v, %v", found, err)
		}

		later := time.Now().Add(time.Minute)
		stale, err := f.store.StaleReservations(f.ctx, testAID, testIID, later, 2)
		if err != nil || !slices.Equal(stale, placed[:2]) {
			t.Errorf("StaleReservations(limit 2) = %+v, %v; want the two oldest", stale, err)
		}
		if stale, err := f.store.StaleReservations(f.ctx, testAID, testIID, placed[0].CreatedAt, 10); err != nil || len(stale) != 0 {
			t.Errorf("StaleReservations(before the first) = %+v, %v; want none", stale, err)
		}

		// An index entry whose record vanished is skipped and dropped.
		f.rdb.HDel(f.ctx, f.keys.Reservations(testAID, testIID), strconv.FormatInt(placed[0].OrderID, 10))
		stale, err = f.store.StaleReservations(f.ctx, testAID, testIID, later, 10)
		if err != nil || !slices.Equal(stale, placed[1:]) {
			t.Errorf("StaleReservations after losing a record = %+v, %v; want %+v", stale, err, placed[1:])
		}
		if n := f.rdb.ZCard(f.ctx, f.keys.ReservationTimes(testAID, testIID)).Val(); n != 2 {
			t.Errorf("index holds %d entries, want the orphan dropped (2)", n)
		}

		if err := f.store.ClearReservations(f.ctx, testAID, testIID, []int64{placed[1].OrderID, newOrderID()}); err != nil {
			t.Fatal(err)
		}
		snap, err := f.store.Snapshot(f.ctx, testAID, testIID)
		if err != nil {
			t.Fatal(err)
		}
		want := stock.ItemSnapshot{Exists: true, Total: 10, Available: 7, Held: 3, Reservations: placed[2:]}
		if snap.Exists != want.Exists || snap.Total != want.Total || snap.Available != want.Available ||
			snap.Held != want.Held || !slices.Equal(snap.Reservations, want.Reservations) {
			t.Errorf("Snapshot = %+v, want %+v", snap, want)
		}
		if n := f.rdb.ZCard(f.ctx, f.keys.ReservationTimes(testAID, testIID)).Val(); n != 1 {
			t.Errorf("index holds %d entries after clear, want 1", n)
		}
	})
}

func TestSnapshotOfMissingItem(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		snap, err := f.store.Snapshot(f.ctx, testAID, testIID)
		if err != nil || snap.Exists || snap.Total != 0 || len(snap.Reservations) != 0 {
			t.Errorf("Snapshot = %+v, %v; want a missing item", snap, err)
		}
	})
}

func TestRestockReturnsUnitsOnce(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		m.PerUserLimit = 2
		f.warm(t, m)
		r := buy(hugeUser)
		r.Quantity = 2
		if _, err := f.store.Buy(f.ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Buy(f.ctx, buy(hugeUser)); err == nil {
			t.Fatal("limit not enforced before the restock")
		}

		req := stock.RestockRequest{ActivityID: testAID, ItemID: testIID, UserID: hugeUser, OrderID: r.OrderID, Quantity: 2}
		res, err := f.store.Restock(f.ctx, req)
		if err != nil || res != (stock.RestockResult{Restocked: true, Available: 10}) {
			t.Fatalf("Restock = %+v, %v", res, err)
		}
		if f.rdb.HExists(f.ctx, f.keys.Buyers(testAID, testIID), strconv.FormatInt(hugeUser, 10)).Val() {
			t.Error("buyer still counted after restock")
		}
		if _, found, _ := f.store.Reservation(f.ctx, testAID, testIID, r.OrderID); found {
			t.Error("reservation of the cancelled order is still there")
		}

		before := f.dump(t)
		res, err = f.store.Restock(f.ctx, req)
		if err != nil || res != (stock.RestockResult{Restocked: false, Available: 10}) {
			t.Fatalf("second Restock = %+v, %v", res, err)
		}
		if after := f.dump(t); after != before {
			t.Errorf("second Restock changed Redis:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		// The user's quota is free again.
		if _, err := f.store.Buy(f.ctx, buy(hugeUser)); err != nil {
			t.Errorf("buy after restock: %v", err)
		}
	})
}

func TestRestockOfMissingItemWritesNothing(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		_, err := f.store.Restock(f.ctx, stock.RestockRequest{ActivityID: testAID, ItemID: testIID, UserID: 1, OrderID: 5, Quantity: 1})
		if err != stock.ErrNotPublished {
			t.Errorf("Restock = %v, want ErrNotPublished", err)
		}
		if d := f.dump(t); d != "" {
			t.Errorf("restock of a missing item wrote:\n%s", d)
		}
	})
}
