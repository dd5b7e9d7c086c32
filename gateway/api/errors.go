package api

// ErrorResponse is the body of every error answer of every endpoint, with
// the HTTP status that fits: {"error":{"code":"SOLD_OUT","message":"…"}}.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error is an ErrorResponse's detail. Clients switch on Code; Message is
// for people and may change.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes are part of the HTTP contract: clients switch on them. The
// status each comes with is in the gateway package's error mapping.
const (
	// CodeInvalidRequest (400): a malformed body, path or header, or an
	// invalid field (the message names it).
	CodeInvalidRequest = "INVALID_REQUEST"
	// CodeInvalidQuantity (400): a buy's quantity is not 1 to the limit.
	CodeInvalidQuantity = "INVALID_QUANTITY"
	// CodeTooLarge (413): the body is over the configured cap.
	CodeTooLarge = "PAYLOAD_TOO_LARGE"
	// CodeUnauthorized (401): no valid bearer token.
	CodeUnauthorized = "UNAUTHORIZED"
	// CodeForbidden (403): a valid token without the admin role.
	CodeForbidden = "FORBIDDEN"
	// CodeNotFound (404): no such route, activity, item, or order of the
	// caller's.
	CodeNotFound = "NOT_FOUND"
	// CodeNotStarted (403): the sale window has not opened.
	CodeNotStarted = "NOT_STARTED"
	// CodeEnded (403): the sale window has closed.
	CodeEnded = "ENDED"
	// CodeSoldOut (409): not enough stock left.
	CodeSoldOut = "SOLD_OUT"
	// CodeLimitExceeded (409): the buyer already holds the per-user limit.
	CodeLimitExceeded = "LIMIT_EXCEEDED"
	// CodeAlreadyPublished (409): the activity was published before.
	CodeAlreadyPublished = "ALREADY_PUBLISHED"
	// CodeRateLimited (429, Retry-After): over the buy or per-user rate.
	CodeRateLimited = "RATE_LIMITED"
	// CodeBusy (429, Retry-After): too many buys in flight cluster-wide.
	CodeBusy = "BUSY"
	// CodeUnavailable (503, Retry-After): a dependency is down or an order
	// is not persisted yet; retry.
	CodeUnavailable = "UNAVAILABLE"
	// CodeStockUnconfirmed (503, Retry-After): with redis.durability
	// replica, the stock was reserved but the Redis master did not confirm
	// it reached a replica in time, so no order was placed; retry with the
	// same Idempotency-Key.
	CodeStockUnconfirmed = "STOCK_UNCONFIRMED"
	// CodeInternal (500): a bug; never a business outcome.
	CodeInternal = "INTERNAL"
	// CodeBadSignature (401): X-Signature does not match the callback body.
	CodeBadSignature = "INVALID_SIGNATURE"
	// CodeAmountMismatch (400): a payment's amount is not the order's.
	CodeAmountMismatch = "AMOUNT_MISMATCH"
	// CodeOrderClosed (409): the order cannot take this payment (cancelled,
	// or the trade paid another order); refund the trade.
	CodeOrderClosed = "ORDER_CLOSED"
	// CodeNotPending (409): a cancel of an order that is paid or cancelled
	// by its timer.
	CodeNotPending = "NOT_PENDING"
)
