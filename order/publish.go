package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seckill/seckill/stock"
)

// Publisher announces accepted orders on the order-created stream.
type Publisher struct {
	b       *Broker
	timeout time.Duration
}

// NewPublisher returns a publisher whose every publish waits at most timeout
// for JetStream's acknowledgement.
func NewPublisher(b *Broker, timeout time.Duration) *Publisher {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Publisher{b: b, timeout: timeout}
}

// Publish stores the order's reservation as an order-created message and
// waits until JetStream has it. The message id is the order id, so
// republishing the same order (a retried buy, the reconciler) stores it once
// within the duplicate window; the persister's insert is idempotent beyond it.
//
// An error means the order may or may not be stored: the caller must not
// give the stock back, the reservation in Redis still claims it.
func (p *Publisher) Publish(ctx context.Context, r stock.Reservation) error {
	return p.PublishMany(ctx, []stock.Reservation{r})[0]
}

// PublishMany is Publish for several orders at once, with one error per
// order. All messages are written before any ack is awaited, so they leave
// in one flush and their acks arrive together: for the orders of one buy
// round trip this costs the gateway about what one publish costs.
func (p *Publisher) PublishMany(ctx context.Context, rs []stock.Reservation) []error {
	errs := make([]error, len(rs))
	if !p.b.Connected() {
		for i := range errs {
			errs[i] = ErrBrokerDown
		}
		return errs
	}
	// Async publish: the acks arrive on one reply subscription, instead of
	// a request/reply round of goroutine hand-offs per order. The caller
	// still waits for every ack before answering. One deadline covers the
	// whole call, the writes included (a client with too many acks
	// outstanding stalls them).
	deadline := time.Now().Add(p.timeout)
	futures := make([]jetstream.PubAckFuture, len(rs))
	for i, r := range rs {
		data, err := r.MarshalJSON()
		if err != nil {
			errs[i] = fmt.Errorf("order: publish order %d: %w", r.OrderID, err)
			continue
		}
		msg := &nats.Msg{Subject: p.b.OrderSubject(r.OrderID), Data: data, Header: nats.Header{}}
		msg.Header[jetstream.MsgIDHeader] = []string{strconv.FormatInt(r.OrderID, 10)}
		left := time.Until(deadline)
		if left <= 0 {
			errs[i] = fmt.Errorf("order: publish order %d: %w", r.OrderID, context.DeadlineExceeded)
			continue
		}
		// No retry on "no responders" (a stream without a leader): the
		// buy answers 503 at once and the stream is held (Broker.Connected)
		// rather than every buy meanwhile waiting out the retries.
		f, err := p.b.JS.PublishMsgAsync(msg, jetstream.WithStallWait(left), jetstream.WithRetryAttempts(0))
		if err != nil {
			errs[i] = p.wrap(r.OrderID, err)
			continue
		}
		futures[i] = f
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	// giveUp fails every order from i on that has no ack yet.
	giveUp := func(i int, cause error) []error {
		for j := i; j < len(futures); j++ {
			if futures[j] == nil || errs[j] != nil {
				continue
			}
			select {
			case <-futures[j].Ok():
			default:
				errs[j] = fmt.Errorf("order: publish order %d: %w", rs[j].OrderID, cause)
			}
		}
		return errs
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			p.b.streamAcked()
		case err := <-f.Err():
			errs[i] = p.wrap(rs[i].OrderID, err)
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				p.b.holdStream()
			}
		case <-t.C:
			p.b.holdStream()
			return giveUp(i, context.DeadlineExceeded)
		case <-ctx.Done():
			return giveUp(i, ctx.Err())
		}
	}
	return errs
}

func (p *Publisher) wrap(orderID int64, err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("%w: %v", ErrBrokerDown, err)
	}
	return fmt.Errorf("order: publish order %d: %w", orderID, err)
}

// DecodeCreated reads an order-created message back into a PENDING order.
func DecodeCreated(data []byte) (Order, error) {
	var r stock.Reservation
	if err := json.Unmarshal(data, &r); err != nil {
		return Order{}, fmt.Errorf("order: decode order-created message: %w", err)
	}
	if r.OrderID == 0 || r.Quantity < 1 {
		return Order{}, fmt.Errorf("order: order-created message without id or quantity")
	}
	return FromReservation(r), nil
}

// FromReservation turns a Redis reservation into the PENDING order it stands for.
func FromReservation(r stock.Reservation) Order {
	return Order{
		ID:          r.OrderID,
		ActivityID:  r.ActivityID,
		ItemID:      r.ItemID,
		UserID:      r.UserID,
		Quantity:    r.Quantity,
		AmountCents: r.AmountCents,
		Status:      StatusPending,
		CreatedAt:   r.CreatedAt.UTC(),
		ExpireAt:    r.ExpireAt.UTC(),
	}
}
