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
	both(t, func(t *testing.T, top stocktest.Topology) {
		rdb, keys := stocktest.Open(t, top)
		s := stock.NewStore(rdb, keys)
		ctx := context.Background()
		warmItem(t, s, 50, 1)
		// The script cache is empty after a Redis restart: the first batch's
		// EVALSHA calls fail with NOSCRIPT and must be retried, not reported.
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		b := stock.NewBatcher(s, discard{}, stock.BatchConfig{Pipelines: 1, MaxCalls: 64})

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
		st := b.Stats()
		if st.Calls != buyers || st.Batches >= st.Calls || st.Lingered != 0 {
			t.Fatalf("%+v: want %d calls coalesced into fewer round trips, no linger", st, buyers)
		}
		t.Logf("%d buys in %d round trips", st.Calls, st.Batches)
	})
}

// TestBatcherLingersOnlyUnderLoad: calls arriving one after another, each
// alone in the queue, are gathered into few round trips by a linger; a
// call after a quiet spell never waits.
func TestBatcherLingersOnlyUnderLoad(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		rdb, keys := stocktest.Open(t, top)
		s := stock.NewStore(rdb, keys)
		ctx := context.Background()
		warmItem(t, s, 1000, 1)
		// Load the script first: a first round trip that also loads it
		// (NOSCRIPT, then EVAL) is slow enough for the trickle to queue up
		// behind it, and the linger would have nothing to do.
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 999, OrderID: 4999, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
		var user atomic.Int64
		// trickle starts n buys 1 ms apart, each in its own goroutine.
		trickle := func(b *stock.Batcher, n int) {
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					u := user.Add(1)
					if _, err := b.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: u, OrderID: 5000 + u, Quantity: 1}); err != nil {
						t.Error(err)
					}
				}()
				// Arrival rate is what the linger reacts to: time itself is
				// the subject here.
				time.Sleep(time.Millisecond)
			}
			wg.Wait()
		}

		// A 300 ms linger against calls 1 ms apart: the first call (nothing
		// arrived before it) goes at once, the second waits and gathers the
		// rest. Scheduling delays on a busy machine could split them further,
		// so the bound is loose; without the linger they are 20 round trips.
		lazy := stock.NewBatcher(s, discard{}, stock.BatchConfig{Pipelines: 1, MaxCalls: 64, Linger: 300 * time.Millisecond})
		trickle(lazy, 20)
		st := lazy.Stats()
		if st.Calls != 20 || st.Batches > 5 || st.Lingered < 1 {
			t.Fatalf("20 calls 1 ms apart with a 300 ms linger: %+v, want at most 5 round trips", st)
		}
		// Quiet for longer than the linger: the next call goes at once. (The
		// quiet spell is the subject: the batcher measures it with the clock.)
		time.Sleep(400 * time.Millisecond)
		lingered := st.Lingered
		trickle(lazy, 1)
		if st := lazy.Stats(); st.Lingered != lingered {
			t.Fatalf("a call after a quiet spell lingered: %+v", st)
		}
	})
}

// TestBatcherWithdrawsCancelledCall: a call whose context ends while it
// waits behind a round trip in flight is taken out of the queue. It never
// reaches Redis, and no later round trip sends it.
func TestBatcherWithdrawsCancelledCall(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		rdb, keys := stocktest.Open(t, top)
		s := stock.NewStore(rdb, keys)
		ctx := context.Background()
		warmItem(t, s, 10, 1)
		// Hold the first round trip in Redis's place until the queued call
		// has given up: the hook tells when the script is on its way, and
		// waits for release.
		inFlight, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		rdb.AddHook(scriptHook(func() {
			once.Do(func() { close(inFlight); <-release })
		}))
		b := stock.NewBatcher(s, discard{}, stock.BatchConfig{Pipelines: 1, MaxCalls: 64})
		req := func(user int64) stock.BuyRequest {
			return stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: user, OrderID: 1000 + user, Quantity: 1}
		}
		first := make(chan error, 1)
		go func() { _, err := b.Buy(ctx, req(1)); first <- err }()
		<-inFlight
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := b.Buy(cctx, req(2))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("queued call whose context ended: %v, want context.DeadlineExceeded", err)
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatalf("the call in flight: %v", err)
		}
		if _, err := b.Buy(ctx, req(3)); err != nil {
			t.Fatal(err)
		}
		snap, err := s.Snapshot(ctx, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		held := map[int64]bool{}
		for _, r := range snap.Reservations {
			held[r.OrderID] = true
		}
		if !held[1001] || !held[1003] || len(held) != 2 || snap.Available != 8 {
			t.Fatalf("after buys 1 and 3 and a withdrawn 2: %+v, want reservations of orders 1001 and 1003 only", snap)
		}
		if st := b.Stats(); st.Calls != 2 || st.Batches != 2 {
			t.Fatalf("%+v, want 2 calls in 2 round trips", st)
		}
	})
}

func TestRestockManyReturnsEachOrderOnce(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		rdb, keys := stocktest.Open(t, top)
		s := stock.NewStore(rdb, keys)
		ctx := context.Background()
		warmItem(t, s, 10, 5)
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
	})
}

// warmItem publishes item 1 of activity 1 in s, on sale now, with total
// units and a per-user limit.
func warmItem(t *testing.T, s *stock.Store, total, limit int64) {
	t.Helper()
	m := meta()
	m.ActivityID, m.ItemID, m.Total, m.PerUserLimit = 1, 1, total, limit
	if created, err := s.Warm(t.Context(), m); err != nil || !created {
		t.Fatalf("Warm = %v, %v; want created", created, err)
	}
}
