package order

import (
	"context"
	"fmt"
	"time"

	"github.com/seckill/seckill/stock"
)

// Admin runs the activity operations that touch both PostgreSQL and Redis.
type Admin struct {
	store *Store
	stock *stock.Store
}

// NewAdmin returns the admin operations over the two stores.
func NewAdmin(st *Store, sk *stock.Store) *Admin { return &Admin{store: st, stock: sk} }

// Create validates a (against now) and stores it as a DRAFT with its
// items; see Store.CreateActivity. Nothing reaches Redis before Publish.
func (a *Admin) Create(ctx context.Context, act Activity, now time.Time) (Activity, error) {
	return a.store.CreateActivity(ctx, act, now)
}

// Activity returns the activity with its items, whatever its status, or
// ErrNotFound.
func (a *Admin) Activity(ctx context.Context, id int64) (Activity, error) {
	return a.store.Activity(ctx, id)
}

// Publish warms every item into Redis and then marks the activity PUBLISHED.
//
// Redis comes first and writes only absent items, so a publish that fails
// half-way can simply be repeated, and a second publish can never reset
// stock: the row's conditional DRAFT → PUBLISHED update decides who wins,
// and until it commits the gateways' catalog does not sell the items.
func (a *Admin) Publish(ctx context.Context, id int64) (Activity, error) {
	act, err := a.store.Activity(ctx, id)
	if err != nil {
		return Activity{}, err
	}
	if act.Status == ActivityPublished {
		return Activity{}, ErrAlreadyPublished
	}
	for _, it := range act.Items {
		if _, err := a.stock.Warm(ctx, metaOf(act, it)); err != nil {
			return Activity{}, fmt.Errorf("order: warm item %d: %w", it.ID, err)
		}
	}
	return a.store.MarkPublished(ctx, id)
}

func metaOf(act Activity, it Item) stock.ItemMeta {
	return stock.ItemMeta{
		ActivityID:   act.ID,
		ItemID:       it.ID,
		Total:        it.Stock,
		PriceCents:   it.PriceCents,
		StartAt:      act.StartAt,
		EndAt:        act.EndAt,
		PerUserLimit: act.PerUserLimit,
		PayTimeout:   act.PayTimeout,
	}
}

// ItemStats is one item's stock accounting. All figures are units.
type ItemStats struct {
	ItemID     int64
	StockTotal int64
	// Available is the stock left in Redis; -1 when the item's Redis state is missing.
	Available int64
	// Reserved is units of reservations whose order has no row yet.
	Reserved  int64
	Pending   int64
	Paid      int64
	Cancelled int64
	// Returning is cancelled units whose return to Redis has not finished yet.
	Returning int64
	// Consistent says the conservation equation holds in this snapshot:
	// total = available + reserved + pending + paid + returning.
	Consistent bool
}

// Stats reads Redis first and PostgreSQL second: an order persisted in
// between is then counted as a row and not as a reservation, never twice.
// Figures taken while buys, payments or cancels run are a snapshot of two
// stores and may be briefly off; once traffic stops they are exact.
func (a *Admin) Stats(ctx context.Context, id int64) (Activity, []ItemStats, error) {
	act, err := a.store.Activity(ctx, id)
	if err != nil {
		return Activity{}, nil, err
	}
	snaps := make([]stock.ItemSnapshot, len(act.Items))
	var resIDs []int64
	for i, it := range act.Items {
		if snaps[i], err = a.stock.Snapshot(ctx, act.ID, it.ID); err != nil {
			return Activity{}, nil, err
		}
		for _, r := range snaps[i].Reservations {
			resIDs = append(resIDs, r.OrderID)
		}
	}
	existing, err := a.store.ExistingOrderIDs(ctx, resIDs)
	if err != nil {
		return Activity{}, nil, err
	}
	counts, err := a.store.ItemCounts(ctx, act.ID)
	if err != nil {
		return Activity{}, nil, err
	}
	out := make([]ItemStats, len(act.Items))
	for i, it := range act.Items {
		c := counts[it.ID]
		s := ItemStats{ItemID: it.ID, StockTotal: it.Stock, Available: -1,
			Pending: c.PendingUnits, Paid: c.PaidUnits, Cancelled: c.CancelledUnits, Returning: c.ReturningUnits}
		if snaps[i].Exists {
			s.Available = snaps[i].Available
		}
		for _, r := range snaps[i].Reservations {
			if !existing[r.OrderID] {
				s.Reserved += r.Quantity
			}
		}
		s.Consistent = snaps[i].Exists &&
			s.StockTotal == s.Available+s.Reserved+s.Pending+s.Paid+s.Returning
		if act.Status != ActivityPublished {
			s.Consistent = !snaps[i].Exists && s.Pending+s.Paid+s.Cancelled == 0
		}
		out[i] = s
	}
	return act, out, nil
}
