package stock_test

import (
	"testing"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

func TestRebuildRestoresLostItem(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		m.Total, m.PerUserLimit = 3000, 2
		held := map[int64]int64{hugeUser: 2, 5: 0}
		for u := range int64(2497) { // > 1000 pairs: the script writes in chunks
			held[100+u] = 1
		}
		cancelled := newOrderID()
		created, err := f.store.Rebuild(f.ctx, stock.ItemState{Meta: m, Held: held, Cancelled: []int64{cancelled}})
		if err != nil || !created {
			t.Fatalf("Rebuild = %v, %v", created, err)
		}
		snap, err := f.store.Snapshot(f.ctx, testAID, testIID)
		if err != nil || !snap.Exists || snap.Total != 3000 || snap.Available != 501 || snap.Held != 2499 {
			t.Fatalf("after rebuild: %+v, %v; want total 3000, available 501, held 2499", snap, err)
		}
		if n := f.rdb.HLen(f.ctx, f.keys.Buyers(testAID, testIID)).Val(); n != 2498 {
			t.Errorf("buyers hash has %d users, want 2498 (zero holdings skipped)", n)
		}
		// The cancelled order's units are already in stock: a retried return is a no-op.
		res, err := f.store.Restock(f.ctx, stock.RestockRequest{ActivityID: testAID, ItemID: testIID, UserID: 9, OrderID: cancelled, Quantity: 1})
		if err != nil || res.Restocked || res.Available != 501 {
			t.Errorf("Restock of a cancelled order after rebuild = %+v, %v; want a no-op", res, err)
		}
		// The per-user limit counts the rebuilt holdings.
		if _, err := f.store.Buy(f.ctx, buy(hugeUser)); err != stock.ErrLimitExceeded {
			t.Errorf("buy past the rebuilt limit = %v, want ErrLimitExceeded", err)
		}

		before := f.dump(t)
		if created, err := f.store.Rebuild(f.ctx, stock.ItemState{Meta: m}); err != nil || created {
			t.Errorf("Rebuild over live state = %v, %v; want not created", created, err)
		}
		if after := f.dump(t); after != before {
			t.Error("Rebuild over live state changed Redis")
		}
	})
}

func TestRebuildRejectsImpossibleState(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		for _, held := range []map[int64]int64{{1: 11}, {1: -1}} {
			if _, err := f.store.Rebuild(f.ctx, stock.ItemState{Meta: m, Held: held}); err == nil {
				t.Errorf("Rebuild with held %v succeeded", held)
			}
		}
		if d := f.dump(t); d != "" {
			t.Errorf("rejected rebuild wrote:\n%s", d)
		}
	})
}
