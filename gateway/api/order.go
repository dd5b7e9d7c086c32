package api

import "time"

// Order statuses, the Status of Order and BuyAccepted.
const (
	// OrderPending is an accepted order whose payment window is open.
	OrderPending = "PENDING"
	// OrderPaid is an order whose payment callback was accepted.
	OrderPaid = "PAID"
	// OrderCancelled is an order closed unpaid; CancelReason says why.
	OrderCancelled = "CANCELLED"
)

// Cancel reasons, the CancelReason of a CANCELLED Order.
const (
	// CancelTimeout is an order whose payment window closed unpaid.
	CancelTimeout = "TIMEOUT"
	// CancelUser is an order its owner cancelled.
	CancelUser = "USER"
)

// BuyRequest is the body of POST /api/v1/seckill (with an optional
// Idempotency-Key header). Quantity is from 1 to the per-user limit.
type BuyRequest struct {
	ActivityID ID    `json:"activity_id"`
	ItemID     ID    `json:"item_id"`
	Quantity   int64 `json:"quantity"`
}

// BuyAccepted is the 202 of POST /api/v1/seckill: the order exists and is
// readable at GET /api/v1/orders/{order_id} at once. Status is PENDING.
type BuyAccepted struct {
	OrderID ID     `json:"order_id"`
	Status  string `json:"status"`
}

// Order is an order as its owner sees it: the 200 of
// GET /api/v1/orders/{id}, of POST /api/v1/orders/{id}/cancel (CANCELLED,
// reason USER) and of POST /api/v1/payments/callback (PAID).
type Order struct {
	OrderID     ID     `json:"order_id"`
	ActivityID  ID     `json:"activity_id"`
	ItemID      ID     `json:"item_id"`
	UserID      ID     `json:"user_id"`
	Quantity    int64  `json:"quantity"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
	// CancelReason is null unless Status is CANCELLED.
	CancelReason *string   `json:"cancel_reason"`
	CreatedAt    time.Time `json:"created_at"`
	// ExpireAt is when the payment window closes.
	ExpireAt    time.Time  `json:"expire_at"`
	PaidAt      *time.Time `json:"paid_at"`
	CancelledAt *time.Time `json:"cancelled_at"`
}

// PaymentCallback is the body of POST /api/v1/payments/callback, sent by
// the payment provider with X-Signature, the hex HMAC-SHA256 of the exact
// body bytes. OrderID, TradeNo (1-64 characters, no control characters) and
// AmountCents are required; PaidAt defaults to the time of the call.
type PaymentCallback struct {
	OrderID     ID         `json:"order_id"`
	TradeNo     string     `json:"trade_no"`
	AmountCents *int64     `json:"amount_cents"`
	PaidAt      *time.Time `json:"paid_at,omitempty"`
}
