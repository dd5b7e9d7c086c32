package stock

import (
	"context"
	"fmt"
)

// HasIdempotencyKey reports whether a user's Idempotency-Key already names
// an accepted order of the item. The gateway asks it only when the item is
// known sold out, so that a resend still gets its original 202 (the buy
// script then returns the duplicate).
func (s *Store) HasIdempotencyKey(ctx context.Context, aid, iid, userID int64, key string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.keys.Idempotency(aid, iid, userID, key)).Result()
	if err != nil {
		return false, fmt.Errorf("stock: idempotency key: %w", err)
	}
	return n == 1, nil
}
