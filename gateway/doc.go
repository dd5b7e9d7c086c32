// Package gateway is seckill's HTTP face: the Gin router, authentication,
// Sentinel flow control, the handlers and the one mapping of errors to HTTP
// responses. Domain logic lives in stock (Redis) and order (PostgreSQL,
// JetStream); the wire shapes live in gateway/api. cmd/seckill builds a
// Server from Deps and serves Server.Handler.
//
// # Routes
//
//	POST /admin/v1/activities               admin  createActivity   201 api.Activity (DRAFT)
//	POST /admin/v1/activities/{id}/publish  admin  publishActivity  200 api.Activity (PUBLISHED)
//	GET  /admin/v1/activities/{id}/stats    admin  activityStats    200 api.ActivityStats
//	GET  /api/v1/activities/{id}            anyone activityInfo     200 api.ActivityInfo
//	POST /api/v1/seckill                    user   buy              202 api.BuyAccepted
//	GET  /api/v1/orders/{id}                owner  getOrder         200 api.Order
//	POST /api/v1/orders/{id}/cancel         owner  cancelOrder      200 api.Order (CANCELLED)
//	POST /api/v1/payments/callback          X-Signature  paymentCallback  200 api.Order (PAID)
//	GET  /healthz, /readyz, /metrics        ops    (NewOps serves only these)
//
// Every request passes recovery (a panic is a logged 500), the body cap
// (413 from Content-Length, or while reading) and errorMiddleware; admin
// and user routes then check the bearer JWT (auth.go, jwtfast.go).
//
// # The buy path
//
// POST /api/v1/seckill (Server.buy, buy.go) runs its checks cheapest and
// most local first, so a rush that cannot succeed costs no Redis call:
//
//  1. Sentinel: the global buy QPS and the per-user QPS (429 RATE_LIMITED).
//  2. Body: {activity_id, item_id, quantity} and the Idempotency-Key header
//     (400 INVALID_REQUEST).
//  3. Catalog: the in-memory view of published items (404; 400
//     INVALID_QUANTITY for 1..per-user limit).
//  4. Sold-out flag: gateway-local, so a sold-out item costs nothing (409
//     SOLD_OUT), except a resend with a known Idempotency-Key.
//  5. Broker connected: no order is accepted that could not be queued (503).
//  6. Semaphore: the cluster-wide cap on buys in flight (429 BUSY).
//  7. Circuit breaker on Redis (503 while open).
//  8. Order id from the leased Snowflake node (503 if the lease is lost).
//  9. The one buy script (lua/buy.lua): window, per-user limit and stock
//     checked and changed atomically, the reservation written (403
//     NOT_STARTED/ENDED, 409 SOLD_OUT/LIMIT_EXCEEDED).
//  10. Publish the order to JetStream (503 if unconfirmed; the reservation
//     stays and the reconciler persists it), then 202.
//
// # Errors
//
// Handlers never write an error response themselves: they record a domain
// error or an *apiError with c.Error, and errorMiddleware (errors.go) maps
// it with toAPIError, writes api.ErrorResponse and is the one place that
// logs failures. The mapping:
//
//	order.ErrInvalid                         400 INVALID_REQUEST (message names the field)
//	order.ErrAmountMismatch                  400 AMOUNT_MISMATCH
//	stock.ErrNotStarted, stock.ErrEnded      403 NOT_STARTED, ENDED
//	order.ErrNotFound                        404 NOT_FOUND
//	order.ErrAlreadyPublished                409 ALREADY_PUBLISHED
//	order.ErrNotPending                      409 NOT_PENDING
//	order.ErrClosed, order.ErrDuplicateTrade 409 ORDER_CLOSED
//	stock.ErrSoldOut, stock.ErrLimitExceeded 409 SOLD_OUT, LIMIT_EXCEEDED
//	stock.ErrBusy                            429 BUSY + Retry-After
//	order.ErrNotPersisted                    503 UNAVAILABLE + Retry-After (not logged)
//	stock.ErrLeaseLost, order unavailable    503 UNAVAILABLE + Retry-After
//	anything else                            500 INTERNAL (never guessed to be a business outcome)
//
// Authentication (401 UNAUTHORIZED, 403 FORBIDDEN), the body cap (413
// PAYLOAD_TOO_LARGE), Sentinel (429 RATE_LIMITED) and a bad payment
// signature (401 INVALID_SIGNATURE) answer from their middleware or
// handler with the same api.ErrorResponse.
package gateway
