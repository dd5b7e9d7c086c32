package stock_test

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// newSem returns a semaphore named "buy" with the fixture's keys.
func (f *fixture) newSem(holder string, capacity, block int64, ttl time.Duration) *stock.Semaphore {
	return stock.NewSemaphore(f.rdb, f.keys, stock.SemaphoreConfig{
		Name: "buy", Capacity: capacity, Block: block, TTL: ttl, Holder: holder,
	})
}

// leased sums the permits Redis records over all holders.
func (f *fixture) leased(t testing.TB) int64 {
	t.Helper()
	var sum int64
	for _, v := range f.rdb.HVals(f.ctx, f.keys.SemaphoreHolders("buy")).Val() {
		n, _ := strconv.ParseInt(v, 10, 64)
		sum += n
	}
	return sum
}

// acquireN takes n permits from s, failing the test on any refusal.
func acquireN(t testing.TB, s *stock.Semaphore, n int) []func() {
	t.Helper()
	var rel []func()
	for i := range n {
		r, err := s.Acquire(t.Context())
		if err != nil {
			t.Fatalf("acquire %d of %d: %v", i+1, n, err)
		}
		rel = append(rel, r)
	}
	return rel
}

func TestSemaphoreCapsAcrossHolders(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		a, b := f.newSem("a", 10, 3, 10*time.Second), f.newSem("b", 10, 3, 10*time.Second)

		// Alternate until both are refused: exactly the capacity is handed out.
		var relA, relB []func()
		for busyA, busyB := false, false; !busyA || !busyB; {
			if r, err := a.Acquire(f.ctx); err == nil {
				relA = append(relA, r)
			} else if errors.Is(err, stock.ErrBusy) {
				busyA = true
			} else {
				t.Fatal(err)
			}
			if r, err := b.Acquire(f.ctx); err == nil {
				relB = append(relB, r)
			} else if errors.Is(err, stock.ErrBusy) {
				busyB = true
			} else {
				t.Fatal(err)
			}
		}
		if got := len(relA) + len(relB); got != 10 || f.leased(t) != 10 {
			t.Fatalf("handed out %d (a %d, b %d), Redis records %d; want 10 and 10", got, len(relA), len(relB), f.leased(t))
		}
		if _, err := b.Acquire(f.ctx); !errors.Is(err, stock.ErrBusy) {
			t.Fatalf("11th acquire = %v, want ErrBusy", err)
		}

		// A released permit is reused locally at once…
		relA[0]()
		relA[0]() // a second call is a no-op
		if a.InUse() != int64(len(relA)-1) {
			t.Fatalf("InUse = %d after one release, want %d", a.InUse(), len(relA)-1)
		}
		if relA[0], _ = a.Acquire(f.ctx); relA[0] == nil {
			t.Fatal("acquire after a local release was refused")
		}
		// …and handed back to Redis by RunOnce once a whole block is idle, so
		// the other holder can lease it.
		for _, r := range relA {
			r()
		}
		if err := a.RunOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		if a.Held() != 0 {
			t.Errorf("a holds %d idle permits after RunOnce, want 0", a.Held())
		}
		relB = append(relB, acquireN(t, b, 10-len(relB))...)
		if f.leased(t) != 10 || b.InUse() != 10 {
			t.Errorf("b uses %d, Redis records %d; want 10 and 10", b.InUse(), f.leased(t))
		}
	})
}

func TestSemaphoreConcurrentNeverExceedsCapacity(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		sems := []*stock.Semaphore{f.newSem("a", 10, 3, 10*time.Second), f.newSem("b", 10, 3, 10*time.Second)}
		var inFlight, peak, granted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 200 {
			wg.Go(func() {
				<-start
				rel, err := sems[i%2].Acquire(f.ctx)
				if err != nil {
					if !errors.Is(err, stock.ErrBusy) {
						t.Error(err)
					}
					return
				}
				granted.Add(1)
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(time.Millisecond) // time is the subject: hold the permit so holders overlap
				inFlight.Add(-1)
				rel()
			})
		}
		close(start)
		wg.Wait()
		if peak.Load() > 10 || granted.Load() == 0 {
			t.Errorf("peak in flight %d (granted %d); want 1..10", peak.Load(), granted.Load())
		}
		if f.leased(t) > 10 {
			t.Errorf("Redis records %d permits, over capacity 10", f.leased(t))
		}
	})
}

func TestSemaphoreCrashedHolderIsPurged(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		crashed := f.newSem("crashed", 10, 3, 300*time.Millisecond)
		acquireN(t, crashed, 10) // and never renews or releases
		live := f.newSem("live", 10, 3, 10*time.Second)
		if _, err := live.Acquire(f.ctx); !errors.Is(err, stock.ErrBusy) {
			t.Fatalf("acquire while full = %v, want ErrBusy", err)
		}
		time.Sleep(400 * time.Millisecond) // time is the subject: the crashed holder's 300ms lease lapses
		acquireN(t, live, 10)

		// The crashed holder comes back: its renewal finds the lease gone and
		// re-leases only what is free (nothing).
		if err := crashed.RunOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		if crashed.Held() != 0 || f.leased(t) != 10 {
			t.Errorf("crashed holds %d, Redis records %d; want 0 and 10", crashed.Held(), f.leased(t))
		}
		if _, err := crashed.Acquire(f.ctx); !errors.Is(err, stock.ErrBusy) {
			t.Errorf("crashed holder acquire = %v, want ErrBusy", err)
		}
	})
}

func TestSemaphoreRenewKeepsLease(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		s := f.newSem("a", 10, 3, 600*time.Millisecond)
		acquireN(t, s, 4)
		for range 4 {
			time.Sleep(200 * time.Millisecond) // time is the subject: renewals carry the lease past its TTL
			if err := s.RunOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		// 800ms > TTL, but renewed: still held, and the 2 idle permits of the second
		// block are kept (a partly used block is not split).
		if s.Held() != 6 || f.leased(t) != 6 {
			t.Errorf("held %d, Redis records %d; want 6 and 6", s.Held(), f.leased(t))
		}
	})
}

func TestSemaphoreCloseReturnsPermits(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		a := f.newSem("a", 10, 3, 10*time.Second)
		acquireN(t, a, 5)
		if err := a.Close(f.ctx); err != nil {
			t.Fatal(err)
		}
		if f.leased(t) != 0 || a.Held() != 0 {
			t.Errorf("after Close: Redis records %d, a holds %d; want 0", f.leased(t), a.Held())
		}
		if _, err := a.Acquire(f.ctx); !errors.Is(err, stock.ErrClosed) {
			t.Errorf("acquire after Close = %v, want ErrClosed", err)
		}
		acquireN(t, f.newSem("b", 10, 3, 10*time.Second), 10)
	})
}

func TestSemaphoreRedisDownIsNotBusy(t *testing.T) {
	t.Parallel()
	s := stock.NewSemaphore(unreachable(t), stock.Keys{}, stock.SemaphoreConfig{Name: "buy", Capacity: 10, Block: 3, TTL: time.Second, Holder: "a"})
	_, err := s.Acquire(t.Context())
	if err == nil || errors.Is(err, stock.ErrBusy) {
		t.Errorf("acquire against no Redis = %v, want a wrapped connection error", err)
	}
}

func BenchmarkSemaphoreAcquire(b *testing.B) {
	f := setup(b)
	s := f.newSem("bench", 1<<20, 1<<16, 10*time.Second)
	rel, err := s.Acquire(f.ctx) // lease the first block outside the timing
	if err != nil {
		b.Fatal(err)
	}
	rel()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rel, err := s.Acquire(f.ctx)
			if err != nil {
				b.Fatal(err)
			}
			rel()
		}
	})
}
