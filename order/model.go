package order

import (
	"errors"
	"time"
)

// Status is where an order stands in its life. The only transitions are
// PENDING → PAID and PENDING → CANCELLED; PAID and CANCELLED are final, so a
// paid order is never cancelled and a cancelled order is never paid (I6).
// Every transition is one conditional UPDATE guarded by status = 'PENDING',
// and only the caller whose UPDATE changed the row performs side effects.
type Status string

const (
	// StatusPending is an accepted order whose payment window is open. Its
	// units count as sold until it is paid or cancelled.
	StatusPending Status = "PENDING"
	// StatusPaid is an order whose payment callback was accepted before it
	// was cancelled. Final: its units stay sold.
	StatusPaid Status = "PAID"
	// StatusCancelled is an order closed unpaid, by timeout or by its owner.
	// Final: its units go back to Redis exactly once (see Order.StockReturned).
	StatusCancelled Status = "CANCELLED"
)

// CancelReason says why an order became CANCELLED.
type CancelReason string

const (
	// CancelTimeout means the payment window closed (timer or sweeper).
	CancelTimeout CancelReason = "TIMEOUT"
	// CancelUser means the order's owner cancelled it.
	CancelUser CancelReason = "USER"
)

// Order is one row of the orders table: one buyer's claim on Quantity units
// of one item. ID is the Snowflake the gateway returned in its 202, so it is
// also the idempotency key of every step that follows.
type Order struct {
	ID          int64
	ActivityID  int64
	ItemID      int64
	UserID      int64
	Quantity    int64
	AmountCents int64
	Status      Status
	// CancelReason is "" unless Status is CANCELLED.
	CancelReason CancelReason
	CreatedAt    time.Time
	// ExpireAt is when an unpaid order is cancelled with CancelTimeout.
	ExpireAt    time.Time
	PaidAt      *time.Time
	CancelledAt *time.Time
	// StockReturned is set, after cancellation, once the order's units are
	// back in Redis. A CANCELLED order with it false is the sweeper's work.
	StockReturned bool
	// TradeNo is the payment provider's transaction id; "" until paid.
	TradeNo string
}

var (
	// ErrNotFound means no activity or order has the requested id.
	ErrNotFound = errors.New("order: not found")
	// ErrAlreadyPublished means an activity was published before; publishing
	// is done once so that stock in Redis is never reset.
	ErrAlreadyPublished = errors.New("order: already published")
	// ErrInvalid means input broke a rule. It is always wrapped with a message
	// naming the offending field, e.g. "order: invalid: end_at must be after
	// start_at", which is safe to show to the caller.
	ErrInvalid = errors.New("order: invalid")
	// ErrNotPending means the order is PAID or CANCELLED and cannot change.
	ErrNotPending = errors.New("order: not pending")
	// ErrClosed means a payment arrived for a CANCELLED order (or a second,
	// different trade for a PAID one): it must be refunded.
	ErrClosed = errors.New("order: closed to payment")
	// ErrAmountMismatch means a payment's amount differs from the order's.
	ErrAmountMismatch = errors.New("order: amount mismatch")
	// ErrDuplicateTrade means the trade number already paid another order.
	ErrDuplicateTrade = errors.New("order: trade number already used")
	// ErrNotPersisted means the order was accepted but its row is not
	// written yet: the caller should retry shortly.
	ErrNotPersisted = errors.New("order: accepted, not persisted yet")
)
