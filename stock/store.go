package stock

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/lua"
)

var (
	buyScript         = redis.NewScript(lua.Buy)
	warmScript        = redis.NewScript(lua.Warm)
	restockScript     = redis.NewScript(lua.Restock)
	rebuildScript     = redis.NewScript(lua.Rebuild)
	fenceScript       = redis.NewScript(lua.Fence)
	semAcquireScript  = redis.NewScript(lua.SemAcquire)
	semRenewScript    = redis.NewScript(lua.SemRenew)
	semReleaseScript  = redis.NewScript(lua.SemRelease)
	nodeRenewScript   = redis.NewScript(lua.NodeRenew)
	nodeReleaseScript = redis.NewScript(lua.NodeRelease)
)

// Store is the item side of Redis: publishing, buying, returning stock and
// reading reservations. It is safe for concurrent use; beyond the client it
// holds the Registry of items its shard checks guard.
type Store struct {
	rdb  redis.UniversalClient
	keys Keys
	reg  *Registry
	lg   *slog.Logger
	dur  Durability
	memo nodeMemo // CheckShards' last full pass per node
}

// A StoreOption configures a Store.
type StoreOption func(*Store)

// WithRegistry makes the store add the items it warms and rebuilds to reg,
// and check reg's items in CheckShards: pass the registry given to the
// client's ShardHook. Without it the store has a registry of its own.
func WithRegistry(reg *Registry) StoreOption { return func(s *Store) { s.reg = reg } }

// WithLogger sets the store's logger (slog.Default() otherwise).
func WithLogger(log *slog.Logger) StoreOption { return func(s *Store) { s.lg = log } }

// WithDurability sets how a buy is made durable (Durability); the zero value
// is DurabilityFence.
func WithDurability(d Durability) StoreOption { return func(s *Store) { s.dur = d } }

// NewStore returns a Store that talks to rdb and names keys with keys.
func NewStore(rdb redis.UniversalClient, keys Keys, opts ...StoreOption) *Store {
	s := &Store{rdb: rdb, keys: keys}
	for _, o := range opts {
		o(s)
	}
	if s.reg == nil {
		s.reg = NewRegistry()
	}
	return s
}

// Registry returns the items the store's shard checks guard.
func (s *Store) Registry() *Registry { return s.reg }

func (s *Store) log() *slog.Logger {
	if s.lg == nil {
		return slog.Default()
	}
	return s.lg
}

// Keys returns the key builder the store uses.
func (s *Store) Keys() Keys { return s.keys }

// Client returns the Redis client the store uses.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// replyInts reads a script reply made only of integers, checking its shape
// so that a Go/Lua mismatch surfaces as an error rather than a panic.
func replyInts(script string, v any, min int) ([]int64, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) < min {
		return nil, fmt.Errorf("stock: %s: unexpected reply %v", script, v)
	}
	out := make([]int64, len(arr))
	for i, e := range arr {
		n, ok := e.(int64)
		if !ok {
			return nil, fmt.Errorf("stock: %s: reply element %d is %T, want integer", script, i, e)
		}
		out[i] = n
	}
	return out, nil
}

// isNil reports whether err is Redis's "no such key/field" answer.
func isNil(err error) bool { return errors.Is(err, redis.Nil) }
