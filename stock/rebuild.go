package stock

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// ItemState is an item as the system of record (PostgreSQL) knows it, used to
// rebuild Redis after Redis lost its state.
type ItemState struct {
	Meta ItemMeta
	// Held is each user's live units (PENDING + PAID orders).
	Held map[int64]int64
	// Cancelled lists cancelled orders whose stock return may still be retried
	// (stock_returned = false); listing every cancelled order is also correct.
	// Their units count as available after the rebuild, so a later Restock of
	// them must be, and is, a no-op.
	Cancelled []int64
}

// Rebuild restores an item whose hash is missing or fenced: available = Total − Σ Held,
// the buyers hash from Held, and Cancelled marked as already restocked. If
// the hash exists nothing changes and created=false: live state always wins.
//
// Orders accepted but not yet persisted are not in Held, and their
// reservations went with Redis, so rebuild only once the order pipeline has
// drained into PostgreSQL (no order may be in flight), or stock is oversold.
func (s *Store) Rebuild(ctx context.Context, st ItemState) (created bool, err error) {
	m := st.Meta
	if err := m.validate(); err != nil {
		return false, err
	}
	var live int64
	pairs := make([]any, 0, 2*len(st.Held))
	for user, units := range st.Held {
		if units < 0 {
			return false, fmt.Errorf("stock: rebuild: user %d holds %d units", user, units)
		}
		if units > 0 {
			live += units
			pairs = append(pairs, strconv.FormatInt(user, 10), units)
		}
	}
	if live > m.Total {
		return false, fmt.Errorf("stock: rebuild: %d live units exceed total stock %d", live, m.Total)
	}
	args := make([]any, 0, 8+len(pairs)+len(st.Cancelled))
	args = append(args, m.Total-live, m.Total, m.PriceCents, m.StartAt.UnixMilli(), m.EndAt.UnixMilli(),
		m.PerUserLimit, int64(m.PayTimeout/time.Second), len(pairs)/2)
	args = append(args, pairs...)
	for _, id := range st.Cancelled {
		args = append(args, strconv.FormatInt(id, 10))
	}
	aid, iid := m.ActivityID, m.ItemID
	n, err := rebuildScript.Run(ctx, s.rdb,
		[]string{s.keys.Item(aid, iid), s.keys.Buyers(aid, iid), s.keys.Restocked(aid, iid)}, args...,
	).Int64()
	if err != nil {
		return false, fmt.Errorf("stock: rebuild item %d/%d: %w", aid, iid, err)
	}
	s.reg.Add(ItemRef{aid, iid})
	return n == 1, nil
}
