package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/seckill/seckill/stock"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock/lifecycle"
)

// RecoveryConfig tunes Redis-loss recovery.
type RecoveryConfig struct {
	// Every is how often published items are checked for lost Redis state.
	Every time.Duration
	// Settle is how long an item must have been missing before it is
	// rebuilt: longer than a publish can take, so every buy that passed the
	// script before the loss has reached JetStream.
	Settle time.Duration
}

// Recovery rebuilds items whose Redis state is gone (Redis restarted without
// persistence, or was flushed) or fenced (Redis restarted from an append-only
// file that may miss its last second, or a Redis Cluster replica was promoted: see stock.CheckShards).
// Until an item is rebuilt its buy script
// answers NOT_PUBLISHED and the gateway answers 503: nothing sells from
// missing state. The rebuild waits until every accepted order is in
// PostgreSQL (the order stream is drained), then sets available = total −
// live units, restores the per-user counts, and marks cancelled orders as
// returned.
type Recovery struct {
	cfg     RecoveryConfig
	store   *order.Store
	stock   *stock.Store
	drained func(context.Context) (bool, error)
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	missing map[stock.ItemRef]time.Time
}

// NewRecovery returns a recovery loop; drained reports whether the order
// pipeline holds no accepted order that is not yet in PostgreSQL.
func NewRecovery(log *slog.Logger, st *order.Store, sk *stock.Store, drained func(context.Context) (bool, error), cfg RecoveryConfig) *Recovery {
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	return &Recovery{cfg: cfg, store: st, stock: sk, drained: drained, log: log, now: time.Now, missing: map[stock.ItemRef]time.Time{}}
}

// Service checks every cfg.Every while it runs.
func (r *Recovery) Service() *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "recovery", Every: r.cfg.Every, Log: r.log},
		func(ctx context.Context) error {
			_, err := r.RunOnce(ctx)
			return err
		})
}

// RunOnce detects missing items and rebuilds those that have settled; it
// returns how many it rebuilt. A Redis master that fails costs only its own
// items this pass: the pass goes on and returns the error at its end.
func (r *Recovery) RunOnce(ctx context.Context) (int, error) {
	now := r.now()
	items, err := r.store.LiveItems(ctx, now)
	if err != nil {
		return 0, err
	}
	keys := make([]stock.ItemRef, len(items))
	for i, it := range items {
		keys[i] = stock.ItemRef{ActivityID: it.ActivityID, ItemID: it.ItemID}
	}
	// The shard checks guard these items from now on. Connections made
	// after a restart fence items themselves (stock.ShardHook), and buys
	// on a promoted replica too; checking here covers a restart no new
	// connection has seen yet, per shard.
	//
	// A master that does not answer (down, paused) must not stop the
	// others' items from being rebuilt: its Guard and CheckShards errors
	// are reported at the end of the pass (Guard retries its items on the
	// next), and its items, whose state Live cannot read, are skipped
	// (unknown is never taken for missing).
	var passErrs []error
	if _, err := r.stock.Guard(ctx, keys...); err != nil {
		passErrs = append(passErrs, err)
	}
	if _, err := r.stock.CheckShards(ctx); err != nil {
		passErrs = append(passErrs, err)
	}
	live, err := r.stock.Live(ctx, keys)
	if err != nil {
		passErrs = append(passErrs, err)
	}
	if live == nil {
		return 0, errors.Join(passErrs...)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ready []order.CatalogItem
	for i, it := range items {
		k := stock.ItemRef{ActivityID: it.ActivityID, ItemID: it.ItemID}
		switch live[i] {
		case stock.LiveUnknown:
			continue
		case stock.LiveYes:
			delete(r.missing, k)
			continue
		}
		since, seen := r.missing[k]
		if !seen {
			r.missing[k] = now
			r.log.Error("Redis state of a published item is missing or fenced; buys answer 503 until it is rebuilt",
				"activity_id", it.ActivityID, "item_id", it.ItemID)
			continue
		}
		if now.Sub(since) >= r.cfg.Settle {
			ready = append(ready, it)
		}
	}
	if len(ready) == 0 {
		return 0, errors.Join(passErrs...)
	}
	ok, err := r.drained(ctx)
	if err != nil || !ok {
		return 0, errors.Join(append(passErrs, err)...)
	}
	rebuilt := 0
	errs := passErrs
	for _, it := range ready {
		if err := r.rebuild(ctx, it); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(r.missing, stock.ItemRef{ActivityID: it.ActivityID, ItemID: it.ItemID})
		rebuilt++
	}
	return rebuilt, errors.Join(errs...)
}

func (r *Recovery) rebuild(ctx context.Context, it order.CatalogItem) error {
	// Reservations that survived a partial loss are orders too. Redis is
	// read first: the item is fenced, so no reservation appears after this,
	// and the PostgreSQL snapshot read next tells which of them are rows by
	// then, consistently with the live units it counts.
	snap, err := r.stock.Snapshot(ctx, it.ActivityID, it.ItemID)
	if err != nil {
		return err
	}
	ids := make([]int64, len(snap.Reservations))
	for i, res := range snap.Reservations {
		ids[i] = res.OrderID
	}
	live, err := r.store.LiveUnits(ctx, it.ItemID, ids)
	if err != nil {
		return err
	}
	held, cancelled := live.Held, live.Cancelled
	for _, res := range snap.Reservations {
		if !live.Persisted[res.OrderID] {
			held[res.UserID] += res.Quantity
		}
	}
	created, err := r.stock.Rebuild(ctx, stock.ItemState{
		Meta: stock.ItemMeta{
			ActivityID: it.ActivityID, ItemID: it.ItemID, Total: it.Stock, PriceCents: it.PriceCents,
			StartAt: it.StartAt, EndAt: it.EndAt, PerUserLimit: it.PerUserLimit, PayTimeout: it.PayTimeout,
		},
		Held:      held,
		Cancelled: cancelled,
	})
	if err != nil {
		return fmt.Errorf("order: rebuild item %d: %w", it.ItemID, err)
	}
	if created {
		var live int64
		for _, u := range held {
			live += u
		}
		r.log.Warn("rebuilt lost Redis state from PostgreSQL", "activity_id", it.ActivityID,
			"item_id", it.ItemID, "available", it.Stock-live, "live_units", live, "cancelled_orders", len(cancelled))
	}
	return nil
}

// OrdersDrained reports whether the persister consumer durable has nothing
// waiting and nothing in flight: every accepted order published so far is a row.
func OrdersDrained(b *order.Broker, durable string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		c, err := b.JS.Consumer(ctx, b.Config().Stream, durable)
		if err != nil {
			return false, fmt.Errorf("order: persister consumer info: %w", err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false, fmt.Errorf("order: persister consumer info: %w", err)
		}
		return info.NumPending == 0 && info.NumAckPending == 0, nil
	}
}
