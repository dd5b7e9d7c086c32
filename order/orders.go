package order

import (
	"context"
	"errors"
	"time"
)

// Payment is a verified payment provider callback.
type Payment struct {
	OrderID     int64
	TradeNo     string
	AmountCents int64
	PaidAt      time.Time
}

// Orders answers the user- and provider-facing order operations.
type Orders struct {
	store  *Store
	lookup *Lookup
	cancel *Canceller
}

// NewOrders returns the order operations.
func NewOrders(st *Store, l *Lookup, c *Canceller) *Orders {
	return &Orders{store: st, lookup: l, cancel: c}
}

// Get returns a user's order from the moment the buy was accepted; another
// user's order is ErrNotFound, exactly as a missing one.
func (s *Orders) Get(ctx context.Context, id, userID int64) (Order, error) {
	o, err := s.lookup.Order(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if o.UserID != userID {
		return Order{}, ErrNotFound
	}
	return o, nil
}

// row returns the order's row; an order accepted but not yet persisted is
// ErrNotPersisted (retry shortly), an unknown one ErrNotFound.
func (s *Orders) row(ctx context.Context, id int64) (Order, error) {
	o, err := s.store.Order(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return o, err
	}
	switch _, lerr := s.lookup.Order(ctx, id); {
	case lerr == nil:
		return Order{}, ErrNotPersisted
	case errors.Is(lerr, ErrNotFound):
		return Order{}, ErrNotFound
	default:
		// The stream could not be asked: the order may exist. "Not found"
		// would make a payment provider give up; this says retry.
		return Order{}, lerr
	}
}

// CancelByUser cancels the user's own PENDING order (reason USER) and gives
// its units back. ErrNotPending if it is PAID or CANCELLED already.
func (s *Orders) CancelByUser(ctx context.Context, id, userID int64) (Order, error) {
	o, err := s.row(ctx, id)
	if errors.Is(err, ErrNotPersisted) {
		if _, gerr := s.Get(ctx, id, userID); gerr != nil {
			return Order{}, gerr
		}
	}
	if err != nil {
		return Order{}, err
	}
	if o.UserID != userID {
		return Order{}, ErrNotFound
	}
	won, err := s.cancel.Cancel(ctx, []int64{id}, CancelUser, false)
	if len(won) == 1 {
		// A failed stock return is finished by the sweeper; the cancel stands.
		return won[0], nil
	}
	if err != nil {
		return Order{}, err
	}
	// Lost the UPDATE: a repeat of the user's own cancel (its first answer
	// lost on the way) is answered as the first one was.
	cur, err := s.store.Order(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if cur.Status == StatusCancelled && cur.CancelReason == CancelUser {
		return cur, nil
	}
	return Order{}, ErrNotPending
}

// Pay settles an order from a verified callback. It is idempotent per trade:
// the same trade again returns the PAID order. A callback for a CANCELLED
// order, or a different trade for a PAID one, is ErrClosed (refund it); the
// order is never resurrected. A callback that races ahead of the persister
// gets ErrNotPersisted so the provider retries: a payment is never dropped.
func (s *Orders) Pay(ctx context.Context, p Payment) (Order, error) {
	o, err := s.row(ctx, p.OrderID)
	if err != nil {
		return Order{}, err
	}
	if p.AmountCents != o.AmountCents {
		return Order{}, ErrAmountMismatch
	}
	if o.Status == StatusPending {
		paid, won, err := s.store.MarkPaid(ctx, p.OrderID, p.TradeNo, p.PaidAt)
		if err != nil || won {
			return paid, err
		}
		// Lost the race to a cancel or another callback: judge the new state.
		if o, err = s.store.Order(ctx, p.OrderID); err != nil {
			return Order{}, err
		}
	}
	if o.Status == StatusPaid && o.TradeNo == p.TradeNo {
		return o, nil
	}
	return o, ErrClosed
}
