package order

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Lookup finds an order from the moment its buy returned 202: in PostgreSQL
// once persisted, before that in the order-created stream (the 202 is only
// sent after JetStream stored the message).
type Lookup struct {
	store *Store
	b     *Broker
}

// NewLookup returns a Lookup over the store and the broker's order stream.
func NewLookup(st *Store, b *Broker) *Lookup { return &Lookup{store: st, b: b} }

// Order returns the order or ErrNotFound. The row is read again after a
// stream miss because the persister may commit and ack (deleting the
// work-queue message) between the first read and the stream read.
func (l *Lookup) Order(ctx context.Context, id int64) (Order, error) {
	o, err := l.store.Order(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return o, err
	}
	raw, err := l.b.orders.GetLastMsgForSubject(ctx, l.b.OrderSubject(id))
	switch {
	case err == nil:
		return DecodeCreated(raw.Data)
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return l.store.Order(ctx, id)
	default:
		return Order{}, fmt.Errorf("%w: read order %d from the stream: %v", ErrBrokerDown, id, err)
	}
}
