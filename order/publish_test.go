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
