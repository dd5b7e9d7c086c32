package stock

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock/lifecycle"
)

// SoldOut is a gateway-local cache of items known to be sold out, so a request
// for one is refused without any Redis call. Stock can come back (cancelled
// and timed-out orders return theirs), so Run re-checks every marked item and
// clears its flag within one interval of stock reappearing.
//
// Known is the hot path: one atomic pointer load and a lookup in an immutable
// map, with no lock and no allocation. Mark and Clear copy the map, which is
// cheap because only a handful of items are ever sold out at once, and is
// skipped when the flag is already in the wanted state.
type SoldOut struct {
	store *Store
	flags atomic.Pointer[map[ItemRef]uint64] // item -> generation of its Mark

	mu  sync.Mutex // serialises writers of flags
	gen uint64     // last generation handed out; guarded by mu
}

// NewSoldOut returns an empty cache that re-checks items through s.
func NewSoldOut(s *Store) *SoldOut {
	c := &SoldOut{store: s}
	c.flags.Store(&map[ItemRef]uint64{})
	return c
}

// Known reports whether the item is flagged sold out. No Redis, no lock.
func (c *SoldOut) Known(aid, iid int64) bool {
	_, ok := (*c.flags.Load())[ItemRef{aid, iid}]
	return ok
}

// Mark flags the item as sold out. Call it only when the buy script reported
// zero units left (BuyResult.Available == 0 with ErrSoldOut), never on an
// error: a flag set by a failure would turn every later buyer away.
func (c *SoldOut) Mark(aid, iid int64) {
	if c.Known(aid, iid) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.flags.Load()
	if _, ok := old[ItemRef{aid, iid}]; ok {
		return
	}
	next := maps.Clone(old)
	c.gen++
	next[ItemRef{aid, iid}] = c.gen
	c.flags.Store(&next)
}

// Clear removes the item's flag, for example after stock was returned.
func (c *SoldOut) Clear(aid, iid int64) {
	c.clearIf(map[ItemRef]uint64{{aid, iid}: 0}, false)
}

// clearIf removes the given items' flags. With sameGen it removes only flags
// still at the generation recorded, so a Mark that raced with a RunOnce
// check is not undone by that check's stale answer.
func (c *SoldOut) clearIf(items map[ItemRef]uint64, sameGen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.flags.Load()
	var next map[ItemRef]uint64
	for id, gen := range items {
		cur, ok := old[id]
		if !ok || (sameGen && cur != gen) {
			continue
		}
		if next == nil {
			next = maps.Clone(old)
		}
		delete(next, id)
	}
	if next != nil {
		c.flags.Store(&next)
	}
}

// RunOnce checks every marked item in one pipelined round trip and clears the
// flag where stock is above zero or the item hash is gone (a buy must then
// reach Redis to learn ErrNotPublished). On a Redis error no flag changes.
func (c *SoldOut) RunOnce(ctx context.Context) error {
	marked := *c.flags.Load()
	if len(marked) == 0 {
		return nil
	}
	ids := make([]ItemRef, 0, len(marked))
	cmds := make([]*redis.StringCmd, 0, len(marked))
	_, err := c.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id := range marked {
			ids = append(ids, id)
			cmds = append(cmds, p.HGet(ctx, c.store.keys.Item(id.ActivityID, id.ItemID), "stock"))
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return fmt.Errorf("stock: sold-out check of %d items: %w", len(ids), err)
	}
	back := make(map[ItemRef]uint64)
	for i, cmd := range cmds {
		n, err := cmd.Int64()
		switch {
		case isNil(err):
			back[ids[i]] = marked[ids[i]]
		case err != nil:
			return fmt.Errorf("stock: sold-out check of item %d/%d: %w", ids[i].ActivityID, ids[i].ItemID, err)
		case n > 0:
			back[ids[i]] = marked[ids[i]]
		}
	}
	if len(back) > 0 {
		c.clearIf(back, true)
	}
	return nil
}

// Service calls RunOnce every interval while it runs (500ms in production,
// so returned stock is sold again within a second).
func (c *SoldOut) Service(log *slog.Logger, every time.Duration) *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "stock.soldout", Every: every, Log: log}, c.RunOnce)
}
