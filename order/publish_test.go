package order_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/stock"
)

// TestPublishManyStoresEachOrderOnce: one call publishes every order, a
// second call with the same orders stores nothing new (the message id is
// the order id), and with the broker gone every order gets ErrBrokerDown.
func TestPublishManyStoresEachOrderOnce(t *testing.T) {
	t.Parallel()
	b := ordertest.NewBroker(t)
	p := order.NewPublisher(b, 5*time.Second)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var rs []stock.Reservation
	for i := int64(1); i <= 5; i++ {
		rs = append(rs, stock.Reservation{OrderID: 7000 + i, ActivityID: 1, ItemID: 2, UserID: i, Quantity: 1,
			AmountCents: 100 * i, CreatedAt: now, ExpireAt: now.Add(time.Minute)})
	}
	stream, err := b.JS.Stream(ctx, b.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	for round := 0; round < 2; round++ {
		for i, err := range p.PublishMany(ctx, rs) {
			if err != nil {
				t.Fatalf("round %d, order %d: %v", round, rs[i].OrderID, err)
			}
		}
		if n := msgs(); n != uint64(len(rs)) {
			t.Fatalf("after round %d the stream holds %d messages, want %d", round, n, len(rs))
		}
	}
	// Each order is on its own subject with its own body.
	for _, r := range rs {
		m, err := stream.GetLastMsgForSubject(ctx, b.OrderSubject(r.OrderID))
		if err != nil {
			t.Fatalf("order %d: %v", r.OrderID, err)
		}
		if want, _ := r.MarshalJSON(); string(m.Data) != string(want) {
			t.Fatalf("order %d stored as %s, want %s", r.OrderID, m.Data, want)
		}
	}

	b.Close()
	for i, err := range p.PublishMany(ctx, rs[:2]) {
		if !errors.Is(err, order.ErrBrokerDown) {
			t.Fatalf("order %d with the broker closed: %v, want ErrBrokerDown", rs[i].OrderID, err)
		}
	}
}

// TestPublishHoldsAStreamWithoutLeader: a publish that finds no stream
// (as during a cluster's leader election: no responder) fails at once with
// ErrBrokerDown, and the broker reports itself down for a short hold, so
// the gateway refuses the next buys before reserving stock; it is up
// again after the hold, and the stream takes orders once it is back.
func TestPublishHoldsAStreamWithoutLeader(t *testing.T) {
	t.Parallel()
	b := ordertest.NewBroker(t)
	p := order.NewPublisher(b, 5*time.Second)
	ctx := context.Background()
	now := time.Now().UTC()
	r := stock.Reservation{OrderID: 8001, ActivityID: 1, ItemID: 2, UserID: 3, Quantity: 1,
		AmountCents: 100, CreatedAt: now, ExpireAt: now.Add(time.Minute)}
	stream, err := b.JS.Stream(ctx, b.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	if err := b.JS.DeleteStream(ctx, cfg.Name); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Publish(ctx, r); !errors.Is(err, order.ErrBrokerDown) {
		t.Fatalf("publish without a stream: %v, want ErrBrokerDown", err)
	}
	if failed := time.Since(start); failed > time.Second {
		t.Errorf("publish without a stream failed after %v; want no retries (well under 1s)", failed)
	}
	if b.Connected() {
		t.Fatal("Connected right after a publish found no stream; want the stream held as down")
	}
	// waitConnected returns how long after t0 the hold ended.
	waitConnected := func(t0 time.Time) time.Duration {
		for !b.Connected() {
			if time.Since(t0) > 5*time.Second {
				t.Fatal("still held 5s after the failure")
			}
			time.Sleep(10 * time.Millisecond) // polling a hold that only the clock ends
		}
		return time.Since(t0)
	}
	waitConnected(start)
	// A second failed round holds longer (backoff), a success ends it.
	start = time.Now()
	if err := p.Publish(ctx, r); !errors.Is(err, order.ErrBrokerDown) {
		t.Fatalf("second publish without a stream: %v", err)
	}
	if held := waitConnected(start); held < 500*time.Millisecond {
		t.Errorf("second hold ended %v after the publish began, want the doubled hold (500ms)", held)
	}
	if _, err := b.JS.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, r); err != nil {
		t.Fatalf("publish with the stream back: %v", err)
	}
	if !b.Connected() {
		t.Fatal("not Connected after an acked publish")
	}
}
