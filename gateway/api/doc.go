// Package api declares, once, every request and response body of seckill's
// HTTP API (DESIGN.md §4, the README's API section): the gateway builds and
// decodes these types, and Go clients (tests, the load test, the bench)
// import them instead of declaring copies. It imports nothing of seckill and
// no web framework, so any client can use it.
//
// By endpoint:
//
//	POST /admin/v1/activities               CreateActivityRequest → 201 Activity
//	POST /admin/v1/activities/{id}/publish  → 200 Activity
//	GET  /admin/v1/activities/{id}/stats    → 200 ActivityStats
//	GET  /api/v1/activities/{id}            → 200 ActivityInfo
//	POST /api/v1/seckill                    BuyRequest → 202 BuyAccepted
//	GET  /api/v1/orders/{id}                → 200 Order
//	POST /api/v1/orders/{id}/cancel         → 200 Order
//	POST /api/v1/payments/callback          PaymentCallback → 200 Order
//	GET  /healthz, /readyz                  → Health, Readiness
//	any error                               → ErrorResponse, with a Code* constant
//
// Field names are the contract: more fields may be added, none renamed.
// Every int64 id is an ID, a decimal string on the wire. Times are RFC 3339
// in UTC. Status values are the Activity*, Order* and Cancel* constants.
package api
