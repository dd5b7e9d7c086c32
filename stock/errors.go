package stock

import (
	"errors"
	"fmt"
)

// Business outcomes of the Redis side. They are answers, not failures: the
// gateway maps each to its own HTTP status. Redis and network failures are
// never reported as one of these; they come back wrapped as they are.
var (
	// ErrSoldOut: fewer units are available than the buy asked for.
	ErrSoldOut = errors.New("stock: sold out")
	// ErrLimitExceeded: the buy would take the user past the item's per-user limit.
	ErrLimitExceeded = errors.New("stock: per-user limit exceeded")
	// ErrNotStarted: the sale window has not opened yet (by Redis server time).
	ErrNotStarted = errors.New("stock: sale not started")
	// ErrEnded: the sale window has closed (by Redis server time).
	ErrEnded = errors.New("stock: sale ended")
	// ErrNotPublished: the item's hash is missing in Redis, because it was
	// never published or because Redis lost its state and it must be rebuilt.
	ErrNotPublished = errors.New("stock: item not published")
	// ErrBusy: the distributed semaphore has no permit left.
	ErrBusy = errors.New("stock: too many buys in flight")
	// ErrLeaseLost: the Snowflake node-id lease is lost or not held, so no ids
	// may be generated with it.
	ErrLeaseLost = errors.New("stock: node id lease lost")
	// ErrNoFreeNode: all 1024 Snowflake node ids are leased by other processes.
	ErrNoFreeNode = errors.New("stock: no free node id")
	// ErrClosed: the semaphore was closed and leases no more permits.
	ErrClosed = errors.New("stock: semaphore closed")
	// ErrNotForwarded: the buy reserved stock but its Batcher's forwarder
	// failed to hand the order on; the error also wraps the forwarder's.
	// The reservation stands (the reconciler persists it), so this is an
	// infrastructure failure, not a refusal.
	ErrNotForwarded = errors.New("stock: order not handed on")
	// ErrNotReplicated: with DurabilityReplica, the buy reserved stock but
	// its master did not confirm it reached the replicas WAIT asked for in
	// time (or the master failed mid round trip), so it was not handed on.
	// The reservation stays in Redis: if the master keeps it the reconciler
	// turns it into an order; if the master is failed over it vanishes with
	// the lost writes. No accepted buy is lost either way; an infrastructure
	// failure (503), not a refusal. A restock (Restock, RestockMany) whose
	// return was not confirmed fails with it too: the caller retries later.
	ErrNotReplicated = errors.New("stock: write not confirmed on a replica")
)

// Result codes shared by the item scripts (buy.lua, restock.lua). Each script's
// header lists which of them it returns.
const (
	codeOK            = 0
	codeDuplicate     = 1
	codeNotPublished  = 2
	codeNotStarted    = 3
	codeEnded         = 4
	codeLimitExceeded = 5
	codeSoldOut       = 6
)

// codeErr maps a script result code to its sentinel error; OK and DUPLICATE are
// successful outcomes and map to nil. An unknown code means the Go side and the
// Lua side disagree, which is a bug worth a loud error, not a business answer.
func codeErr(code int64) error {
	switch code {
	case codeOK, codeDuplicate:
		return nil
	case codeNotPublished:
		return ErrNotPublished
	case codeNotStarted:
		return ErrNotStarted
	case codeEnded:
		return ErrEnded
	case codeLimitExceeded:
		return ErrLimitExceeded
	case codeSoldOut:
		return ErrSoldOut
	default:
		return fmt.Errorf("stock: unknown script result code %d", code)
	}
}
