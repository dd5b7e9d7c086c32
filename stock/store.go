package stock

import (
	"errors"
	"fmt"

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
// reading reservations. It is safe for concurrent use and holds no state of
// its own beyond the client.
type Store struct {
	rdb  redis.UniversalClient
	keys Keys
}

// NewStore returns a Store that talks to rdb and names keys with keys.
func NewStore(rdb redis.UniversalClient, keys Keys) *Store {
	return &Store{rdb: rdb, keys: keys}
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
