package stock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestRestartFencesStaleState plays a Redis that came back from an
// append-only file missing its last writes: three units sold before the
// crash look available again. The restart is detected, the item refuses
// buys until rebuilt, and the rebuild from the system of record (here: the
// held units) restores the true stock.
func TestRestartFencesStaleState(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
	s := stock.NewStore(rdb, keys)
	ctx := context.Background()
	meta := stock.ItemMeta{ActivityID: 1, ItemID: 1, Total: 10, PriceCents: 100,
		StartAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), PerUserLimit: 1, PayTimeout: time.Minute}
	if _, err := s.Warm(ctx, meta); err != nil {
		t.Fatal(err)
	}
	if fenced, err := s.CheckRestart(ctx); err != nil || fenced {
		t.Fatalf("first check: fenced %v (%v); it only records the run_id", fenced, err)
	}
	for u := int64(1); u <= 3; u++ {
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: u, OrderID: 100 + u, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if fenced, err := s.CheckRestart(ctx); err != nil || fenced {
		t.Fatalf("same server: fenced %v (%v)", fenced, err)
	}
	// The "restart": state from another server instance, three decrements lost.
	rdb.Set(ctx, keys.RunID(), "run-id-of-the-crashed-server", 0)
	rdb.HIncrBy(ctx, keys.Item(1, 1), "stock", 3)
	rdb.HDel(ctx, keys.Buyers(1, 1), "1", "2", "3")

	if fenced, err := s.CheckRestart(ctx); err != nil || !fenced {
		t.Fatalf("after a restart: fenced %v (%v), want true", fenced, err)
	}
	if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 9, OrderID: 200, Quantity: 1}); !errors.Is(err, stock.ErrNotPublished) {
		t.Fatalf("buy of a fenced item: %v, want ErrNotPublished", err)
	}
	live, err := s.Live(ctx, []stock.ItemRef{{ActivityID: 1, ItemID: 1}})
	if err != nil || live[0] {
		t.Fatalf("fenced item live=%v (%v)", live, err)
	}
	// Recovery rebuilds from PostgreSQL's truth: three users hold one unit.
	created, err := s.Rebuild(ctx, stock.ItemState{Meta: meta, Held: map[int64]int64{1: 1, 2: 1, 3: 1}})
	if err != nil || !created {
		t.Fatalf("rebuild of a fenced item: created %v (%v)", created, err)
	}
	snap, err := s.Snapshot(ctx, 1, 1)
	if err != nil || snap.Available != 7 || snap.Held != 3 {
		t.Fatalf("after rebuild: %+v (%v), want available 7, held 3", snap, err)
	}
	if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 1, OrderID: 201, Quantity: 1}); !errors.Is(err, stock.ErrLimitExceeded) {
		t.Fatalf("holder after rebuild: %v, want ErrLimitExceeded", err)
	}
	if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 9, OrderID: 202, Quantity: 1}); err != nil {
		t.Fatalf("buy after rebuild: %v", err)
	}
	// A rebuild of a live, unfenced item changes nothing.
	if created, err := s.Rebuild(ctx, stock.ItemState{Meta: meta}); err != nil || created {
		t.Fatalf("rebuild of a live item: created %v (%v)", created, err)
	}
}
