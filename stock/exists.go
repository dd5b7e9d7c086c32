package stock

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ItemRef names one item.
type ItemRef struct{ ActivityID, ItemID int64 }

// Exists reports, per item, whether its Redis state (the item hash) exists;
// one pipelined round trip.
func (s *Store) Exists(ctx context.Context, items []ItemRef) ([]bool, error) {
	if len(items) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(items))
	for i, it := range items {
		cmds[i] = pipe.Exists(ctx, s.keys.Item(it.ActivityID, it.ItemID))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("stock: check items exist: %w", err)
	}
	out := make([]bool, len(items))
	for i, c := range cmds {
		out[i] = c.Val() == 1
	}
	return out, nil
}
