// Package lifecycle is the one start/stop lifecycle every background service
// in seckill shares: the gateway's semaphore renewal, sold-out re-check,
// node-id lease and catalog refresh, and the worker's persisters, payment
// timeouts, reconciler, sweeper and recovery.
//
// It lives under stock because stock is the lowest layer that both stock and
// order may import (dependencies run cmd → gateway → order → stock → lua); it
// imports nothing of seckill itself.
//
// A Service runs one pass function in a loop:
//
//	for {
//	    err := pass(passCtx)
//	    wait Every (or, after errors, a growing jittered backoff)
//	    select { case <-stop: return; case <-timer: }
//	}
//
// Stopping comes in two strengths, as in riverqueue/river's startstop:
//
//   - Stop (soft): no new pass starts; the pass in progress finishes. A
//     persister's batch that was read is inserted and acked. Stop takes a
//     context: when it expires the stop turns hard.
//   - StopAndCancel (hard): the pass in progress sees its context cancelled
//     and the loop ends as soon as it returns.
//
// Cancelling the context given to Start is a hard stop.
//
// Errors are logged once per change of message (a Redis outage logs one line,
// not one per tick) and once more on recovery. After an error the next pass
// waits Backoff.Min, doubling per consecutive error up to Backoff.Max, plus up
// to a fifth of that as jitter so replicas do not retry in step; the first
// success resets it. A pass may end the service for good by returning Halt(err)
// (the node-id lease does when it is lost); Run and Err then report err,
// and the caller, not the loop, logs what it means.
//
// Tests never wait on the loop: each service exposes its own RunOnce(ctx) and
// tests call it directly. The loop itself is tested with an injected Clock.
package lifecycle
