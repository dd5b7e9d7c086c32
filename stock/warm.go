package stock

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ItemMeta is what publishing writes to Redis for one item.
type ItemMeta struct {
	ActivityID, ItemID int64
	// Total is the stock put on sale; the item starts with all of it available.
	Total int64
	// PriceCents is the unit price; a reservation's amount is price × quantity.
	PriceCents int64
	// StartAt (inclusive) and EndAt (exclusive) bound the sale window,
	// compared against Redis server time.
	StartAt, EndAt time.Time
	// PerUserLimit is the most live units one user may hold; 0 means no limit.
	PerUserLimit int64
	// PayTimeout is how long an order may stay unpaid; whole seconds, ≥ 1s.
	PayTimeout time.Duration
}

func (m ItemMeta) validate() error {
	switch {
	case m.Total < 0:
		return errors.New("stock: warm: total must be >= 0")
	case m.PriceCents < 0:
		return errors.New("stock: warm: price must be >= 0")
	case !m.EndAt.After(m.StartAt):
		return errors.New("stock: warm: end must be after start")
	case m.PerUserLimit < 0:
		return errors.New("stock: warm: per-user limit must be >= 0")
	case m.PayTimeout < time.Second || m.PayTimeout%time.Second != 0:
		return fmt.Errorf("stock: warm: pay timeout %v must be a whole number of seconds >= 1s", m.PayTimeout)
	}
	return nil
}

// Warm writes the item's stock and metadata once. If the item hash already
// exists nothing is changed and created=false: publishing twice never resets
// stock, so a retried publish after a partial failure is safe.
func (s *Store) Warm(ctx context.Context, m ItemMeta) (created bool, err error) {
	if err := m.validate(); err != nil {
		return false, err
	}
	n, err := warmScript.Run(ctx, s.rdb,
		[]string{s.keys.Item(m.ActivityID, m.ItemID)},
		m.Total, m.PriceCents, m.StartAt.UnixMilli(), m.EndAt.UnixMilli(),
		m.PerUserLimit, int64(m.PayTimeout/time.Second),
	).Int64()
	if err != nil {
		return false, fmt.Errorf("stock: warm item %d/%d: %w", m.ActivityID, m.ItemID, err)
	}
	s.reg.Add(ItemRef{m.ActivityID, m.ItemID})
	return n == 1, nil
}
