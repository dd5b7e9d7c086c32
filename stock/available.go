package stock

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Available returns the units left in Redis for each item of an activity,
// one pipelined round trip; an item without Redis state reports 0.
func (s *Store) Available(ctx context.Context, aid int64, itemIDs []int64) (map[int64]int64, error) {
	pipe := s.Client().Pipeline()
	cmds := make([]*redis.StringCmd, len(itemIDs))
	for i, iid := range itemIDs {
		cmds[i] = pipe.HGet(ctx, s.Keys().Item(aid, iid), "stock")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("stock: read available: %w", err)
	}
	out := make(map[int64]int64, len(itemIDs))
	for i, iid := range itemIDs {
		v, err := cmds[i].Int64()
		if err != nil && err != redis.Nil {
			return nil, fmt.Errorf("stock: read available: %w", err)
		}
		out[iid] = v
	}
	return out, nil
}
