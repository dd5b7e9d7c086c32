// Package lua holds seckill's Redis scripts, one .lua file per script, embedded
// into the binary. Each file opens with its KEYS, ARGV and return contract.
//
// The scripts are plain source here; package stock wraps each one exactly once
// in a package-level redis.Script and owns the Go side of every contract.
package lua

import _ "embed"

// Buy is one buy attempt: checks the window, the per-user limit and stock, then
// deducts stock, counts the buyer and writes the order's reservation, atomically.
//
//go:embed buy.lua
var Buy string

// Warm publishes an item's stock and metadata once; a second call changes nothing.
//
//go:embed warm.lua
var Warm string

// Restock gives a cancelled order's units back to stock, at most once per order.
//
//go:embed restock.lua
var Restock string

// SemAcquire purges expired semaphore holders and leases up to one block of permits.
//
//go:embed sem_acquire.lua
var SemAcquire string

// SemRenew extends a semaphore holder's lease and shrinks it to what it still needs.
//
//go:embed sem_renew.lua
var SemRenew string

// SemRelease gives back every permit a semaphore holder leased.
//
//go:embed sem_release.lua
var SemRelease string

// NodeRenew extends a Snowflake node-id lease if the caller still holds it.
//
//go:embed node_renew.lua
var NodeRenew string

// NodeRelease frees a Snowflake node id if the caller still holds it.
//
//go:embed node_release.lua
var NodeRelease string

// Rebuild restores an item whose Redis state was lost, from PostgreSQL's figures.
//
//go:embed rebuild.lua
var Rebuild string

// Fence stops sales of an item whose state may be stale after a Redis restart.
//
//go:embed fence.lua
var Fence string
