package stock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

func TestBatcherSellsExactlyAndCoalesces(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
	s := stock.NewStore(rdb, keys)
	ctx := context.Background()
	if _, err := s.Warm(ctx, stock.ItemMeta{ActivityID: 1, ItemID: 1, Total: 50, PriceCents: 100,
		StartAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), PerUserLimit: 1, PayTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// The script cache is empty after a Redis restart: the first batch's
	// EVALSHA calls fail with NOSCRIPT and must be retried, not reported.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b := stock.NewBatcher(s, 1, 64)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(runCtx) }()
	defer func() { stop(); <-done }()
	time.Sleep(10 * time.Millisecond) // let Run start

	const buyers = 300
	var ok, soldOut atomic.Int64
	ids := sync.Map{}
	var wg sync.WaitGroup
	for i := 0; i < buyers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: int64(i + 1), OrderID: int64(1<<60 + i), Quantity: 1})
			switch {
			case err == nil:
				ok.Add(1)
				ids.Store(res.OrderID, true)
			case errors.Is(err, stock.ErrSoldOut):
				soldOut.Add(1)
			default:
				t.Errorf("buy: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 50 || soldOut.Load() != buyers-50 {
		t.Fatalf("%d accepted, %d sold out; want 50 and %d", ok.Load(), soldOut.Load(), buyers-50)
	}
	snap, err := s.Snapshot(ctx, 1, 1)
	if err != nil || snap.Available != 0 || len(snap.Reservations) != 50 {
		t.Fatalf("snapshot %+v (%v)", snap, err)
	}
	batches, calls := b.Stats()
	if calls != buyers || batches >= calls {
		t.Fatalf("%d calls in %d round trips: nothing was coalesced", calls, batches)
	}
	t.Logf("%d buys in %d round trips", calls, batches)
}

func TestBatcherFallsBackWhenNotRunning(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
	s := stock.NewStore(rdb, keys)
	b := stock.NewBatcher(s, 1, 8)
	_, err := b.Buy(context.Background(), stock.BuyRequest{ActivityID: 9, ItemID: 9, UserID: 1, OrderID: 1, Quantity: 1})
	if !errors.Is(err, stock.ErrNotPublished) {
		t.Fatalf("buy without Run: %v, want ErrNotPublished from a direct call", err)
	}
}

func TestRestockManyReturnsEachOrderOnce(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
	s := stock.NewStore(rdb, keys)
	ctx := context.Background()
	if _, err := s.Warm(ctx, stock.ItemMeta{ActivityID: 1, ItemID: 1, Total: 10, PriceCents: 100,
		StartAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), PerUserLimit: 5, PayTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	var reqs []stock.RestockRequest
	for i := int64(1); i <= 4; i++ {
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: i, OrderID: 100 + i, Quantity: 2}); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, stock.RestockRequest{ActivityID: 1, ItemID: 1, UserID: i, OrderID: 100 + i, Quantity: 2})
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil { // the NOSCRIPT path too
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		for i, err := range s.RestockMany(ctx, reqs) {
			if err != nil {
				t.Fatalf("round %d order %d: %v", round, i, err)
			}
		}
	}
	snap, err := s.Snapshot(ctx, 1, 1)
	if err != nil || snap.Available != 10 || snap.Held != 0 {
		t.Fatalf("after three rounds of returning 4 orders of 2: %+v (%v), want available 10, held 0", snap, err)
	}
	missing := []stock.RestockRequest{{ActivityID: 9, ItemID: 9, UserID: 1, OrderID: 1, Quantity: 1}}
	if errs := s.RestockMany(ctx, missing); !errors.Is(errs[0], stock.ErrNotPublished) {
		t.Fatalf("restock of a missing item: %v", errs[0])
	}
}
