// Package order owns everything about an order after the buy script accepted
// it, and the activities it is bought from: the PostgreSQL store, the NATS
// JetStream broker the gateway publishes accepted orders to, and the
// operations the gateway calls (publish, look up, pay, cancel, admin). What
// only the worker role runs (persisting, payment timeouts, reconciling,
// sweeping, Redis recovery) lives in order/worker, which imports this
// package; this package imports stock and never the gateway or the worker.
//
// # Order states
//
//	                payment callback (Orders.Pay)
//	           ┌──────────────────────────────────▶ PAID (final)
//	PENDING ───┤
//	           │  expire_at passed: timer (worker.Timeouts) or sweeper
//	           ├──────────────────────────────────▶ CANCELLED, reason TIMEOUT (final)
//	           │  owner's cancel (Orders.CancelByUser)
//	           └──────────────────────────────────▶ CANCELLED, reason USER (final)
//
// An order is PENDING from the buy script's reservation in Redis; it becomes
// a row when the persister (or, for a lost publish, the reconciler) inserts
// it, and Lookup answers for it from the stream in between. Every transition
// is one conditional UPDATE ... WHERE status = 'PENDING': exactly one of a
// racing payment, user cancel and timer wins, and only the winner acts. A
// cancel's winner then returns the units to Redis through Canceller, exactly
// once (the restock script keeps a per-order marker; stock_returned records
// that the return finished, and the sweeper finishes returns a crash cut
// short). A timeout never fires early: its UPDATE also requires
// expire_at <= now().
//
// # Main types
//
//   - Store: PostgreSQL (activities, items, orders); Migrate creates the schema.
//   - Broker: the JetStream connection and order stream (embedded server, an
//     external server, or a NATS cluster given as a URL list). Every stream
//     and durable consumer is set up through EnsureStream / EnsureConsumer:
//     nats.replicas applied (scaled up, never down), config read back,
//     retried while a cluster starts.
//   - Publisher: the gateway's publish of accepted reservations as order-created messages.
//   - Lookup, Orders: get, pay and cancel an order for its user or the payment provider.
//   - Canceller: the one cancellation path (timeout, user, sweeper).
//   - Catalog: the gateway's in-memory view of live items (Store.LiveItems).
//   - Admin: create, publish (warm Redis) and report on activities.
//   - Status, CancelReason, Order, Activity: the model (model.go, activity.go).
package order
