package stock

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// ItemSnapshot is an item's Redis state at one instant.
type ItemSnapshot struct {
	// Exists is false when the item hash is missing; the other fields then
	// describe whatever reservations and buyers are left.
	Exists bool
	// Total is the stock published; Available is the units left to sell.
	Total, Available int64
	// Held is the sum of live units over all buyers, as the buyers hash counts them.
	Held int64
	// Reservations are the accepted orders not yet cleared by the persister,
	// in no particular order.
	Reservations []Reservation
}

// Snapshot reads an item's counters, buyers and all its reservations
// atomically (one MULTI) for stats and invariant checks. It reads every
// reservation, so it is for admin and test use, not the hot path.
func (s *Store) Snapshot(ctx context.Context, aid, iid int64) (ItemSnapshot, error) {
	var (
		item   *redis.SliceCmd
		buyers *redis.StringSliceCmd
		resv   *redis.StringSliceCmd
	)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		item = p.HMGet(ctx, s.keys.Item(aid, iid), "total", "stock")
		buyers = p.HVals(ctx, s.keys.Buyers(aid, iid))
		resv = p.HVals(ctx, s.keys.Reservations(aid, iid))
		return nil
	})
	if err != nil {
		return ItemSnapshot{}, fmt.Errorf("stock: snapshot %d/%d: %w", aid, iid, err)
	}
	var snap ItemSnapshot
	vals := item.Val()
	if total, ok := vals[0].(string); ok {
		snap.Exists = true
		if snap.Total, err = strconv.ParseInt(total, 10, 64); err != nil {
			return ItemSnapshot{}, fmt.Errorf("stock: snapshot %d/%d: total: %w", aid, iid, err)
		}
		avail, _ := vals[1].(string)
		if snap.Available, err = strconv.ParseInt(avail, 10, 64); err != nil {
			return ItemSnapshot{}, fmt.Errorf("stock: snapshot %d/%d: stock: %w", aid, iid, err)
		}
	}
	for _, v := range buyers.Val() {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return ItemSnapshot{}, fmt.Errorf("stock: snapshot %d/%d: buyer units: %w", aid, iid, err)
		}
		snap.Held += n
	}
	snap.Reservations = make([]Reservation, len(resv.Val()))
	for i, raw := range resv.Val() {
		if err := snap.Reservations[i].UnmarshalJSON([]byte(raw)); err != nil {
			return ItemSnapshot{}, err
		}
	}
	return snap, nil
}
