package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/seckill/seckill/stock"
)

// Canceller is the one code path for every cancellation (payment timeout,
// user cancel, sweeper): a conditional UPDATE picks the winners, and only
// they give their units back to Redis. The restock script keeps a per-order
// marker, so a retry after a crash between the two steps cannot return the
// units twice; the row's stock_returned records that the return finished.
type Canceller struct {
	store *Store
	stock *stock.Store
	log   *slog.Logger
	// AfterUpdate, when set, runs between the UPDATE and the stock return;
	// an error stops there, as a crash would. Tests use it.
	AfterUpdate func(won []Order) error
}

// NewCanceller returns the cancellation path over both stores.
func NewCanceller(log *slog.Logger, st *Store, sk *stock.Store) *Canceller {
	return &Canceller{store: st, stock: sk, log: log}
}

// Cancel cancels those of ids that are PENDING (and, with dueOnly, past
// expire_at) and returns the orders this call moved.
func (c *Canceller) Cancel(ctx context.Context, ids []int64, reason CancelReason, dueOnly bool) ([]Order, error) {
	won, err := c.Decide(ctx, ids, reason, dueOnly)
	if err != nil || len(won) == 0 {
		return won, err
	}
	return won, c.ReturnStock(ctx, won)
}

// Decide is Cancel's first step alone: the conditional UPDATE that picks
// the winners. The caller must call ReturnStock for them (or leave it to the
// sweeper, which finishes every return a crash or a failure interrupted).
// The payment timers use it so that a slow Redis shard delays only the
// stock's return, never the next orders' cancellation.
func (c *Canceller) Decide(ctx context.Context, ids []int64, reason CancelReason, dueOnly bool) ([]Order, error) {
	won, err := c.store.CancelPending(ctx, ids, reason, dueOnly)
	if err != nil || len(won) == 0 {
		return won, err
	}
	if c.AfterUpdate != nil {
		if err := c.AfterUpdate(won); err != nil {
			return won, err
		}
	}
	return won, nil
}

// ReturnStock gives cancelled orders' units back (exactly once per order),
// frees the users' quota, and records stock_returned. Orders whose item has
// no Redis state are left unreturned: the rebuild counts them as available.
func (c *Canceller) ReturnStock(ctx context.Context, orders []Order) error {
	reqs := make([]stock.RestockRequest, len(orders))
	for i, o := range orders {
		reqs[i] = stock.RestockRequest{ActivityID: o.ActivityID, ItemID: o.ItemID, OrderID: o.ID, UserID: o.UserID, Quantity: o.Quantity}
	}
	var returned []int64
	var errs []error
	for i, err := range c.stock.RestockMany(ctx, reqs) {
		switch {
		case err == nil: // restocked now, or by an earlier attempt
			returned = append(returned, orders[i].ID)
		case errors.Is(err, stock.ErrNotPublished):
			// Redis lost the item; recovery rebuilds it with these units
			// available and marks them restocked.
		default:
			errs = append(errs, fmt.Errorf("order %d: %w", orders[i].ID, err))
		}
	}
	if err := c.store.MarkStockReturned(ctx, returned); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
