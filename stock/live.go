package stock

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Liveness is what Live found of one item's Redis state.
type Liveness int8

const (
	// LiveUnknown: the item's master did not answer (down, paused, or its
	// slot moving); nothing is known, and nothing may be concluded.
	LiveUnknown Liveness = iota
	// LiveYes: the item hash exists and is not fenced, so it can sell.
	LiveYes
	// LiveNo: the item hash is missing or fenced (recovery rebuilds it).
	LiveNo
)

// Live reports, per item, whether its Redis state can sell (LiveYes), not
// (LiveNo: missing or fenced), or could not be read (LiveUnknown). One
// pipelined round trip; on a cluster a master that fails makes only its
// own items unknown. err joins the failures behind the unknown items.
func (s *Store) Live(ctx context.Context, items []ItemRef) ([]Liveness, error) {
	if len(items) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(items))
	for i, it := range items {
		cmds[i] = pipe.HMGet(ctx, s.keys.Item(it.ActivityID, it.ItemID), "stock", "fenced")
	}
	_, _ = pipe.Exec(ctx)
	out := make([]Liveness, len(items))
	var errs []error
	for i, c := range cmds {
		v, err := c.Result()
		switch {
		case err != nil:
			out[i] = LiveUnknown
			if len(errs) < 3 { // one per failing node is enough to say why
				errs = append(errs, err)
			}
		case len(v) == 2 && v[0] != nil && v[1] == nil:
			out[i] = LiveYes
		default:
			out[i] = LiveNo
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("stock: check items: %w", errors.Join(errs...))
	}
	return out, nil
}
