// Package worker is what only the worker role runs: it turns accepted orders
// into rows and closes the orders nobody pays for. The gateway's code never
// imports it (its tests build one with New, as cmd does); it depends on
// order and stock only (worker → order → stock).
//
// Services (each a stock/lifecycle.Service with a RunOnce that tests call):
//
//   - Persister (persister.go): reads order-created messages from JetStream in
//     batches, inserts them with one idempotent statement, clears their Redis
//     reservations, arms their payment timers (Timeouts.Schedule), then acks.
//   - Timeouts (timeout.go): fires each unpaid order's timeout at its
//     expire_at, by a JetStream message schedule or, on an old server, by
//     delayed redelivery; never early (the UPDATE also checks expire_at).
//   - Reconciler (reconciler.go): inserts reservations older than its grace
//     that never became a row (a gateway died between script and publish).
//   - Sweeper (sweeper.go): cancels PENDING orders the timers missed and
//     finishes stock returns a crash interrupted.
//   - Recovery (recovery.go): rebuilds an item whose Redis state is lost or
//     fenced, once every accepted order is in PostgreSQL.
//
// All of them are idempotent and safe to run in any number of workers.
//
// # Shutdown order
//
// Worker.Stop stops in three stages; each stage finishes its passes in
// progress (soft stop) before the next stage is told to stop:
//
//  1. Intake: the persisters and the reconciler. They create orders and arm
//     timers, so they stop first: no new message is taken, the batch in hand
//     is inserted, its timers armed and acked, and prefetched messages go
//     back to JetStream for other workers.
//  2. Closers: the timeouts consumer and the sweeper. Orders persisted in
//     stage 1 have armed timers by now; what this worker leaves behind is
//     picked up by another worker's timers or sweeper.
//  3. Recovery, last: a rebuild in progress completes rather than leaving an
//     item half rebuilt; it reads the persister consumer, which stage 1 left
//     consistent.
//
// Only after Stop returns does the caller close what the services write to:
// the NATS connection (drain), Redis and PostgreSQL. Senders stop before
// the things they send to. When Stop's context ends first the remaining
// passes are cancelled (hard stop); unacked messages are redelivered.
package worker
