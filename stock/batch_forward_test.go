package stock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestBatcherForwardsEachRoundTrip: every reservation a round trip made
// (and one a retried Idempotency-Key found) is handed on before its caller
// returns, with its own outcome; refused buys are not.
func TestBatcherForwardsEachRoundTrip(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		rdb, keys := stocktest.Open(t, top)
		s := stock.NewStore(rdb, keys)
		ctx := context.Background()
		warmItem(t, s, 20, 1)
		var mu sync.Mutex
		forwarded := map[int64]int{} // order id -> times handed on
		failing := errors.New("order 9013 not confirmed")
		b := stock.NewBatcher(s, forwardFunc(func(_ context.Context, rs []stock.Reservation) []error {
			mu.Lock()
			defer mu.Unlock()
			errs := make([]error, len(rs))
			for i, r := range rs {
				forwarded[r.OrderID]++
				if r.OrderID == 9013 {
					errs[i] = failing
				}
			}
			return errs
		}), stock.BatchConfig{Pipelines: 1, MaxCalls: 64})

		// 30 buyers for 20 units, all at once.
		type outcome struct {
			res stock.BuyResult
			err error
		}
		out := make([]outcome, 30)
		var wg sync.WaitGroup
		for i := range out {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := b.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: int64(i + 1), OrderID: int64(9000 + i), Quantity: 1,
					IdempotencyKey: "k", IdempotencyTTL: time.Minute})
				out[i] = outcome{res, err}
			}()
		}
		wg.Wait()
		accepted := 0
		for i, o := range out {
			id := int64(9000 + i)
			switch {
			case id == 9013 && o.err != nil && !errors.Is(o.err, stock.ErrSoldOut):
				// Reserved, but not handed on: the forwarder's error comes back
				// as the buy's, with the reservation's result.
				if !errors.Is(o.err, stock.ErrNotForwarded) || !errors.Is(o.err, failing) || o.res.OrderID != id || forwarded[id] != 1 {
					t.Errorf("order %d: %+v %v, want ErrNotForwarded wrapping the forwarder's error", id, o.res, o.err)
				}
				accepted++
			case o.err == nil:
				accepted++
				if forwarded[id] != 1 || o.res.OrderID != id {
					t.Errorf("order %d accepted but forwarded %d times", id, forwarded[id])
				}
			case errors.Is(o.err, stock.ErrSoldOut):
				if forwarded[id] != 0 {
					t.Errorf("sold-out buy %d was forwarded", id)
				}
			default:
				t.Fatalf("buy %d: %v", id, o.err)
			}
		}
		if accepted != 20 {
			t.Fatalf("%d accepted, want 20", accepted)
		}

		// A retry with the same key finds the reservation: handed on again
		// (JetStream drops the duplicate), and still answered with the old id.
		var first int
		for i, o := range out {
			if o.err == nil {
				first = i
				break
			}
		}
		res, err := b.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: int64(first + 1), OrderID: 9999, Quantity: 1,
			IdempotencyKey: "k", IdempotencyTTL: time.Minute})
		if err != nil || !res.Duplicate || res.OrderID != int64(9000+first) || forwarded[int64(9000+first)] != 2 {
			t.Fatalf("retry: %+v %v; forwarded %d times", res, err, forwarded[int64(9000+first)])
		}
		if forwarded[9999] != 0 {
			t.Fatal("the retry's unused order id was forwarded")
		}
	})
}

// TestBatcherSurvivesAPanickingRoundTrip: a panic in a round trip (here in
// the forwarder) reaches the caller that led it, fails the calls it carried
// instead of leaving them waiting, and gives the slot back, so the next
// buy goes through.
func TestBatcherSurvivesAPanickingRoundTrip(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		rdb, keys := stocktest.Open(t, top)
		s := stock.NewStore(rdb, keys)
		ctx := context.Background()
		warmItem(t, s, 10, 1)
		var panicked atomic.Bool
		var calls atomic.Int64
		b := stock.NewBatcher(s, forwardFunc(func(_ context.Context, rs []stock.Reservation) []error {
			calls.Add(1)
			if panicked.CompareAndSwap(false, true) {
				panic("forwarder broke")
			}
			return make([]error, len(rs))
		}), stock.BatchConfig{Pipelines: 1, MaxCalls: 64})
		func() {
			defer func() {
				if r := recover(); r != "forwarder broke" {
					t.Fatalf("recovered %v, want the forwarder's panic", r)
				}
			}()
			_, _ = b.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 1, OrderID: 8001, Quantity: 1})
		}()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := b.Buy(cctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 2, OrderID: 8002, Quantity: 1})
		if err != nil || res.OrderID != 8002 || calls.Load() != 2 {
			t.Fatalf("buy after the panic: %+v, %v (forwarder called %d times); want it sent and forwarded", res, err, calls.Load())
		}
	})
}

// TestBatcherCallInFlightDoesNotLeadAgain: with several slots, a caller
// whose call is already in a round trip waits for it; it does not keep
// taking free slots (which spun on an empty queue, lingering each time).
func TestBatcherCallInFlightDoesNotLeadAgain(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		rdb, keys := stocktest.Open(t, top)
		s := stock.NewStore(rdb, keys)
		ctx := context.Background()
		warmItem(t, s, 10, 1)
		// A slow order stream: every round trip's forwarder waits until all
		// three calls are in round trips, so each caller has a call in flight
		// while the others arrive.
		const n = 3
		var mu sync.Mutex
		inFlight := 0
		allIn := make(chan struct{})
		b := stock.NewBatcher(s, forwardFunc(func(_ context.Context, rs []stock.Reservation) []error {
			mu.Lock()
			inFlight += len(rs)
			if inFlight == n {
				close(allIn)
			}
			mu.Unlock()
			<-allIn
			return make([]error, len(rs))
		}), stock.BatchConfig{Pipelines: 4, MaxCalls: 64, Linger: time.Millisecond})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := b.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: int64(i + 1), OrderID: int64(8100 + i), Quantity: 1}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if st := b.Stats(); st.Calls != n || st.Lingered > st.Batches {
			t.Fatalf("%+v: a waiting caller led empty rounds (each lingered)", st)
		}
	})
}

// discard is a forwarder that hands nothing on and never fails.
type discard struct{}

func (discard) PublishMany(_ context.Context, rs []stock.Reservation) []error {
	return make([]error, len(rs))
}

// forwardFunc adapts a function to stock.Forwarder.
type forwardFunc func(ctx context.Context, rs []stock.Reservation) []error

func (f forwardFunc) PublishMany(ctx context.Context, rs []stock.Reservation) []error {
	return f(ctx, rs)
}

// scriptHook is a go-redis hook that calls f before each buy script (EVALSHA
// or EVAL, alone or in a pipeline) goes to Redis.
type scriptHook func()

func (h scriptHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isScript(cmd) {
			h()
		}
		return next(ctx, cmd)
	}
}

func (h scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if isScript(cmd) {
				h()
				break
			}
		}
		return next(ctx, cmds)
	}
}

func isScript(cmd redis.Cmder) bool {
	name := cmd.Name()
	return name == "evalsha" || name == "eval"
}
