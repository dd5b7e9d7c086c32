package order

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/lifecycle"
)

// Catalog is a gateway's in-memory view of the published items, so the buy
// path answers unknown items with 404 without touching Redis or PostgreSQL.
// A miss triggers at most one refresh per MinRefresh, so a flood of unknown
// ids costs a handful of queries per second, and its memory is bounded by
// the published items, not by what clients send.
type Catalog struct {
	store      *Store
	minRefresh time.Duration
	now        func() time.Time

	guard *stock.Store // guards the items of every refresh; nil = none

	mu          sync.RWMutex
	items       map[stock.ItemRef]CatalogItem
	refreshedAt time.Time
	refreshMu   sync.Mutex
}

// NewCatalog returns an empty catalog; call Refresh (or run its Service) to fill it.
func NewCatalog(st *Store, minRefresh time.Duration) *Catalog {
	if minRefresh <= 0 {
		minRefresh = 250 * time.Millisecond
	}
	return &Catalog{store: st, minRefresh: minRefresh, now: time.Now, items: map[stock.ItemRef]CatalogItem{}}
}

// Guard makes every refresh register the catalog's items with sk, the items
// the Redis shard checks fence after a restart or failover, and fence the
// new ones whose Redis state is stale before the catalog shows them
// (stock.Store.Guard). Call it before the first Refresh.
func (c *Catalog) Guard(sk *stock.Store) { c.guard = sk }

// Item returns a published item. ok is false when the item is unknown, not
// published or belongs to another activity.
func (c *Catalog) Item(ctx context.Context, aid, iid int64) (CatalogItem, bool, error) {
	if it, ok := c.lookup(aid, iid); ok {
		return it, true, nil
	}
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	// Another caller may have refreshed while we waited for the lock.
	if it, ok := c.lookup(aid, iid); ok {
		return it, true, nil
	}
	c.mu.RLock()
	fresh := c.now().Sub(c.refreshedAt) < c.minRefresh
	c.mu.RUnlock()
	if fresh {
		return CatalogItem{}, false, nil
	}
	if err := c.refresh(ctx); err != nil {
		return CatalogItem{}, false, err
	}
	it, ok := c.lookup(aid, iid)
	return it, ok, nil
}

func (c *Catalog) lookup(aid, iid int64) (CatalogItem, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	it, ok := c.items[stock.ItemRef{ActivityID: aid, ItemID: iid}]
	return it, ok
}

// Items returns every item the catalog knows.
func (c *Catalog) Items() []CatalogItem {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]CatalogItem, 0, len(c.items))
	for _, it := range c.items {
		out = append(out, it)
	}
	return out
}

// Refresh reloads the published items from PostgreSQL.
func (c *Catalog) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	return c.refresh(ctx)
}

func (c *Catalog) refresh(ctx context.Context) error {
	now := c.now()
	items, err := c.store.LiveItems(ctx, now)
	if err != nil {
		return err
	}
	m := make(map[stock.ItemRef]CatalogItem, len(items))
	refs := make([]stock.ItemRef, 0, len(items))
	for _, it := range items {
		ref := stock.ItemRef{ActivityID: it.ActivityID, ItemID: it.ItemID}
		m[ref] = it
		refs = append(refs, ref)
	}
	// New items are fenced (if stale) before the map that lets buys
	// reach them is swapped in; a failure keeps the old map.
	if c.guard != nil {
		if _, err := c.guard.Guard(ctx, refs...); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.items, c.refreshedAt = m, now
	c.mu.Unlock()
	return nil
}

// Service refreshes the catalog every interval while it runs, so other
// gateways' publishes are seen within that interval.
func (c *Catalog) Service(log *slog.Logger, every time.Duration) *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "catalog", Every: every, Log: log}, c.Refresh)
}
