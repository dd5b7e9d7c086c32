package stock

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Live reports, per item, whether its Redis state can sell: the item hash
// exists and is not fenced. One pipelined round trip.
func (s *Store) Live(ctx context.Context, items []ItemRef) ([]bool, error) {
	if len(items) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(items))
	for i, it := range items {
		cmds[i] = pipe.HMGet(ctx, s.keys.Item(it.ActivityID, it.ItemID), "stock", "fenced")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("stock: check items: %w", err)
	}
	out := make([]bool, len(items))
	for i, c := range cmds {
		v := c.Val()
		out[i] = len(v) == 2 && v[0] != nil && v[1] == nil
	}
	return out, nil
}
