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

func TestBatcherSellsExactlyAndCoalesces(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
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
}

// TestBatcherLingersOnlyUnderLoad: calls arriving one after another, each
// alone in the queue, are gathered into few round trips by a linger; a
// call after a quiet spell never waits.
func TestBatcherLingersOnlyUnderLoad(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
	s := stock.NewStore(rdb, keys)
	ctx := context.Background()
	warmItem(t, s, 1000, 1)
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
}

// TestBatcherWithdrawsCancelledCall: a call whose context ends while it
// waits behind a round trip in flight is taken out of the queue. It never
// reaches Redis, and no later round trip sends it.
func TestBatcherWithdrawsCancelledCall(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
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
}

func TestRestockManyReturnsEachOrderOnce(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
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
}

// TestBatcherForwardsEachRoundTrip: every reservation a round trip made
// (and one a retried Idempotency-Key found) is handed on before its caller
// returns, with its own outcome; refused buys are not.
func TestBatcherForwardsEachRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
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
}

// TestBatcherSurvivesAPanickingRoundTrip: a panic in a round trip (here in
// the forwarder) reaches the caller that led it, fails the calls it carried
// instead of leaving them waiting, and gives the slot back, so the next
// buy goes through.
func TestBatcherSurvivesAPanickingRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
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
}

// TestBatcherCallInFlightDoesNotLeadAgain: with several slots, a caller
// whose call is already in a round trip waits for it; it does not keep
// taking free slots (which spun on an empty queue, lingering each time).
func TestBatcherCallInFlightDoesNotLeadAgain(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.New(t)
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
