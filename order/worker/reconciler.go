package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/seckill/seckill/stock"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock/lifecycle"
)

// ReconcilerConfig tunes the reconciler.
type ReconcilerConfig struct {
	// Grace is how old a reservation must be before the reconciler treats it
	// as lost between the buy script and the publish. It must comfortably
	// exceed the normal buy→persist lag, or it races the persister (harmless,
	// every step is idempotent, but wasted work).
	Grace time.Duration
	// Every is the pause between passes.
	Every time.Duration
	// Batch is the most reservations handled per item per pass.
	Batch int
}

// Reconciler is the safety net for a gateway that died after the buy script
// and before the publish (or whose publish failed): it finds reservations
// older than Grace that have no row and inserts them directly, so every
// reservation becomes exactly one order whatever the broker is doing.
type Reconciler struct {
	sink
	cfg ReconcilerConfig
	now func() time.Time
}

// NewReconciler returns a reconciler; after is the same hook the persister runs.
func NewReconciler(log *slog.Logger, st *order.Store, sk *stock.Store, m *Metrics, cfg ReconcilerConfig, after AfterPersist) *Reconciler {
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.Every <= 0 {
		cfg.Every = 2 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	return &Reconciler{sink: newSink(log, st, sk, m, after), cfg: cfg, now: time.Now}
}

// Service reconciles every cfg.Every while it runs.
func (r *Reconciler) Service() *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "reconciler", Every: r.cfg.Every, Log: r.log,
		// No slowing down after a failed pass: a pass that failed on one
		// part (a Redis shard without a replica, NATS without a stream
		// leader, PostgreSQL) must not delay what this service does for
		// payment timers on the others; a failed pass costs one query.
		Backoff: lifecycle.Backoff{Min: r.cfg.Every, Max: r.cfg.Every}},
		func(ctx context.Context) error {
			_, err := r.RunOnce(ctx)
			return err
		})
}

// RunOnce makes one pass over every live published item and returns how many
// orders it inserted.
func (r *Reconciler) RunOnce(ctx context.Context) (int64, error) {
	now := r.now()
	// Items whose window closed recently cannot get new reservations, but
	// may still hold stale ones from the last minutes of the sale.
	items, err := r.store.LiveItems(ctx, now)
	if err != nil {
		return 0, err
	}
	var total int64
	var outstanding int
	var errs []error
	for _, it := range items {
		n, stale, err := r.reconcileItem(ctx, it, now.Add(-r.cfg.Grace))
		total += n
		outstanding += stale
		if err != nil {
			errs = append(errs, err)
		}
	}
	r.m.Outstanding.Set(float64(outstanding))
	r.m.Reconciled.Add(float64(total))
	return total, errors.Join(errs...)
}

func (r *Reconciler) reconcileItem(ctx context.Context, it order.CatalogItem, olderThan time.Time) (int64, int, error) {
	stale, err := r.stock.StaleReservations(ctx, it.ActivityID, it.ItemID, olderThan, r.cfg.Batch)
	if err != nil || len(stale) == 0 {
		return 0, 0, err
	}
	orders := make([]order.Order, len(stale))
	for i, res := range stale {
		orders[i] = order.FromReservation(res)
	}
	n, err := r.persist(ctx, orders)
	if err != nil {
		return 0, len(stale), err
	}
	if n > 0 {
		r.log.Warn("reconciler persisted orders that never reached the persister",
			"activity_id", it.ActivityID, "item_id", it.ItemID, "orders", n)
	}
	return n, len(stale), nil
}
