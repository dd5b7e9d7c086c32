package order_test

import (
	"slices"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestRebuildAfterCancelDuringLiveRead is the chaos drill's stranded unit,
// made deterministic: a cancel commits while recovery reads an item's live
// units for a rebuild. The rebuild must count the order either as held (and
// the cancel's retried return then gives its units back) or as cancelled
// (its units are available and the return is a no-op), never both: counted
// as held and marked restocked, its units and its buyer's quota would stay
// taken for good (I3, I4).
func TestRebuildAfterCancelDuringLiveRead(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	now := time.Now()
	a, err := s.CreateActivity(ctx, activityAt("Rebuild race", now.Add(-time.Minute), now.Add(time.Hour)), now)
	if err != nil {
		t.Fatal(err)
	}
	it := a.Items[0] // stock 100
	orders := pendingOrders(idBase, 3, it.ID)
	for i := range orders {
		orders[i].ActivityID = a.ID
	}
	if _, err := s.InsertOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	victim := orders[1] // user 1001, 2 units

	// The cancel commits between LiveUnits' two reads, as it did in the drill.
	cancelled := false
	order.SetLiveUnitsRead(s, func() {
		if cancelled {
			return
		}
		cancelled = true
		won, err := s.CancelPending(ctx, []int64{victim.ID}, order.CancelUser, false)
		if err != nil || len(won) != 1 {
			t.Errorf("cancel during the live read: won %d, %v", len(won), err)
		}
	})
	live, err := s.LiveUnits(ctx, it.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	held, gone := live.Held, live.Cancelled
	if !cancelled {
		t.Fatal("the hook between the two reads never ran")
	}
	if held[victim.UserID] > 0 && slices.Contains(gone, victim.ID) {
		t.Fatalf("order %d is both live (user %d holds %d) and cancelled in one rebuild read",
			victim.ID, victim.UserID, held[victim.UserID])
	}

	// Rebuild Redis from that read, then finish the cancel's stock return as
	// its canceller (or the sweeper's retry) does: the item must end
	// conserved, with the cancelled buyer's quota free.
	rdb, keys := stocktest.New(t)
	sk := stock.NewStore(rdb, keys)
	meta := stock.ItemMeta{ActivityID: a.ID, ItemID: it.ID, Total: it.Stock, PriceCents: it.PriceCents,
		StartAt: a.StartAt, EndAt: a.EndAt, PerUserLimit: a.PerUserLimit, PayTimeout: a.PayTimeout}
	if _, err := sk.Rebuild(ctx, stock.ItemState{Meta: meta, Held: held, Cancelled: gone}); err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Restock(ctx, stock.RestockRequest{ActivityID: a.ID, ItemID: it.ID, UserID: victim.UserID,
		OrderID: victim.ID, Quantity: victim.Quantity}); err != nil {
		t.Fatal(err)
	}
	snap, err := sk.Snapshot(ctx, a.ID, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	liveUnits := orders[0].Quantity + orders[2].Quantity
	if snap.Available != it.Stock-liveUnits || snap.Held != liveUnits {
		t.Fatalf("after rebuild and return: available %d, held %d; want %d and %d (stock %d, live units %d)",
			snap.Available, snap.Held, it.Stock-liveUnits, liveUnits, it.Stock, liveUnits)
	}
}

// TestLiveUnitsSeesReservationsInTheSameSnapshot: a reservation the
// reconciler (another worker) turns into a row while recovery reads must be
// counted exactly once: as a live row with Persisted true, or as neither
// with Persisted false (recovery then counts the reservation itself). Read
// outside the snapshot, it was counted neither as held nor as reserved, and
// its units were sold a second time (I1).
func TestLiveUnitsSeesReservationsInTheSameSnapshot(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	now := time.Now()
	a, err := s.CreateActivity(ctx, activityAt("Reconcile race", now.Add(-time.Minute), now.Add(time.Hour)), now)
	if err != nil {
		t.Fatal(err)
	}
	it := a.Items[0]
	orders := pendingOrders(idBase+500, 2, it.ID)
	for i := range orders {
		orders[i].ActivityID = a.ID
	}
	if _, err := s.InsertOrders(ctx, orders[:1]); err != nil {
		t.Fatal(err)
	}
	late := orders[1] // a reservation in Redis, not yet a row
	inserted := false
	order.SetLiveUnitsRead(s, func() {
		if inserted {
			return
		}
		inserted = true
		if _, err := s.InsertOrders(ctx, []order.Order{late}); err != nil {
			t.Errorf("reconciler insert during the live read: %v", err)
		}
	})
	live, err := s.LiveUnits(ctx, it.ID, []int64{late.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !inserted {
		t.Fatal("the hook during the live read never ran")
	}
	counted := live.Held[late.UserID] == late.Quantity
	if counted != live.Persisted[late.ID] {
		t.Fatalf("order %d: counted as held %v, persisted %v; a rebuild would count its %d units %s",
			late.ID, counted, live.Persisted[late.ID], late.Quantity, map[bool]string{true: "twice", false: "nowhere"}[counted])
	}
}
