package stock_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

func TestBuyConcurrentNeverOversells(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		m.Total = 20
		f.warm(t, m)

		const buyers = 200
		var wg sync.WaitGroup
		errs := make(chan error, buyers)
		for u := range int64(buyers) {
			wg.Go(func() {
				_, err := f.store.Buy(f.ctx, buy(1000+u))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		won, sold := 0, 0
		for err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, stock.ErrSoldOut):
				sold++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if won != 20 || sold != buyers-20 {
			t.Errorf("won %d, sold out %d; want 20 and %d", won, sold, buyers-20)
		}
		snap, err := f.store.Snapshot(f.ctx, testAID, testIID)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Available != 0 || snap.Held != 20 || len(snap.Reservations) != 20 {
			t.Errorf("snapshot: available %d, held %d, %d reservations; want 0, 20, 20",
				snap.Available, snap.Held, len(snap.Reservations))
		}
	})
}

func TestBuyConcurrentOneUserLimit(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		m.Total, m.PerUserLimit = 100, 1
		f.warm(t, m)

		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				_, err := f.store.Buy(f.ctx, buy(99))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		won, limited := 0, 0
		for err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, stock.ErrLimitExceeded):
				limited++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if won != 1 || limited != 49 {
			t.Errorf("won %d, limited %d; want 1 and 49", won, limited)
		}
		if n, _ := f.rdb.HGet(f.ctx, f.keys.Item(testAID, testIID), "stock").Int64(); n != 99 {
			t.Errorf("stock = %d, want 99", n)
		}
	})
}

func BenchmarkBuy(b *testing.B) {
	f := setup(b)
	m := meta()
	m.Total = 1 << 40
	f.warm(b, m)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range int64(b.N) {
		if _, err := f.store.Buy(f.ctx, buy(i)); err != nil {
			b.Fatal(err)
		}
	}
}
