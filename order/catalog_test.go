package order_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestCatalogFencesStaleNewItemsBeforeShowingThem: a gateway's connections
// were checked for a restart before its catalog knew an item; the refresh
// that shows the item must first fence it if its Redis state was written by
// another server (a restart from an append-only file), or buys sell from
// the stale state until the next periodic check.
func TestCatalogFencesStaleNewItemsBeforeShowingThem(t *testing.T) {
	t.Parallel()
	stocktest.ForEachTopology(t, func(t *testing.T, rdb redis.UniversalClient, keys stock.Keys) {
		ctx := t.Context()
		s := newTestStore(t)
		now := time.Now()
		a, err := s.CreateActivity(ctx, activityAt("Catalog guard", now.Add(-time.Minute), now.Add(time.Hour)), now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkPublished(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		it := a.Items[0]
		writer := stock.NewStore(rdb, keys)
		if _, err := writer.Warm(ctx, stock.ItemMeta{ActivityID: a.ID, ItemID: it.ID, Total: it.Stock, PriceCents: it.PriceCents,
			StartAt: a.StartAt, EndAt: a.EndAt, PerUserLimit: a.PerUserLimit, PayTimeout: a.PayTimeout}); err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, keys.Item(a.ID, it.ID), "rid", "run-id-of-the-crashed-server").Err(); err != nil {
			t.Fatal(err)
		}

		// The gateway: its shard check ran before the catalog loaded.
		sk := stock.NewStore(rdb, keys)
		if _, err := sk.CheckShards(ctx); err != nil {
			t.Fatal(err)
		}
		catalog := order.NewCatalog(s, time.Hour)
		catalog.Guard(sk)
		if err := catalog.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := catalog.Item(ctx, a.ID, it.ID); err != nil || !ok {
			t.Fatalf("catalog item: ok %v (%v)", ok, err)
		}
		_, err = sk.Buy(ctx, stock.BuyRequest{ActivityID: a.ID, ItemID: it.ID, UserID: 1, OrderID: idBase + 900, Quantity: 1})
		if !errors.Is(err, stock.ErrNotPublished) {
			t.Fatalf("buy of a stale item the catalog shows: %v, want ErrNotPublished (fenced)", err)
		}
	})
}
