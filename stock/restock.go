package stock

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RestockRequest names a cancelled order whose units go back on sale.
type RestockRequest struct {
	ActivityID, ItemID, UserID, OrderID int64
	// Quantity is the order's units, ≥ 1.
	Quantity int64
}

// RestockResult is the outcome of a Restock that reached Redis.
type RestockResult struct {
	// Restocked is true when this call gave the units back, false when an
	// earlier call for the same order already had (nothing changed).
	Restocked bool
	// Available is the item's stock after the call.
	Available int64
}

// Restock gives a cancelled order's units back to the item's stock, frees
// them from the user's per-user count and drops any reservation left for the
// order, all in one script. It is idempotent per order id, so only the caller
// that won the PENDING → CANCELLED update should call it, and it (or a sweeper
// after a crash) may retry it freely: the units come back exactly once.
//
// ErrNotPublished means the item hash is gone (Redis lost its state); nothing
// is written, and the rebuild from PostgreSQL accounts for the order instead.
//
// With DurabilityReplica the script is followed by WAIT on the same master
// connection; a return its master did not confirm on the replicas in time
// fails with ErrNotReplicated, and the caller retries it later (a master
// failed over while still accepting writes may lose it, and the rebuilt
// shard would then count the order live: a stranded unit). The retry is
// exactly-once either way: the restocked set travels with the return.
func (s *Store) Restock(ctx context.Context, r RestockRequest) (RestockResult, error) {
	if r.Quantity < 1 {
		return RestockResult{}, fmt.Errorf("stock: restock: quantity %d must be >= 1", r.Quantity)
	}
	if s.dur.replica() {
		calls := []*restockCall{{req: r}}
		s.restockReplicated(ctx, calls)
		return calls[0].res, calls[0].err
	}
	v, err := restockScript.Run(ctx, s.rdb, s.restockKeys(r), restockArgs(r)...).Result()
	return parseRestock(strconv.FormatInt(r.OrderID, 10), v, err)
}

// RestockMany runs Restock for many orders in one pipelined round trip (a
// batch of due payment timeouts); errs[i] is the outcome of reqs[i]. Each
// order is still its own atomic script with its own once-only marker.
func (s *Store) RestockMany(ctx context.Context, reqs []RestockRequest) []error {
	errs := make([]error, len(reqs))
	if len(reqs) == 0 {
		return errs
	}
	if s.dur.replica() {
		var calls []*restockCall
		var idx []int
		for i, r := range reqs {
			if r.Quantity < 1 {
				errs[i] = fmt.Errorf("stock: restock: quantity %d must be >= 1", r.Quantity)
				continue
			}
			calls = append(calls, &restockCall{req: r})
			idx = append(idx, i)
		}
		s.restockReplicated(ctx, calls)
		for j, c := range calls {
			errs[idx[j]] = c.err
		}
		return errs
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(reqs))
	for i, r := range reqs {
		if r.Quantity < 1 {
			errs[i] = fmt.Errorf("stock: restock: quantity %d must be >= 1", r.Quantity)
			continue
		}
		cmds[i] = pipe.EvalSha(ctx, restockScript.Hash(), s.restockKeys(r), restockArgs(r)...)
	}
	_, _ = pipe.Exec(ctx)
	for i, r := range reqs {
		if cmds[i] == nil {
			continue
		}
		v, err := cmds[i].Result()
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			_, errs[i] = s.Restock(ctx, r)
			continue
		}
		_, errs[i] = parseRestock(strconv.FormatInt(r.OrderID, 10), v, err)
	}
	return errs
}

func (s *Store) restockKeys(r RestockRequest) []string {
	aid, iid := r.ActivityID, r.ItemID
	return []string{s.keys.Item(aid, iid), s.keys.Buyers(aid, iid), s.keys.Reservations(aid, iid),
		s.keys.ReservationTimes(aid, iid), s.keys.Restocked(aid, iid)}
}

func restockArgs(r RestockRequest) []any {
	return []any{strconv.FormatInt(r.OrderID, 10), strconv.FormatInt(r.UserID, 10), r.Quantity}
}

// parseRestock maps a restock reply to its result, or an error.
func parseRestock(orderID string, v any, err error) (RestockResult, error) {
	if err != nil {
		return RestockResult{}, fmt.Errorf("stock: restock order %s: %w", orderID, err)
	}
	ints, err := replyInts("restock", v, 1)
	if err != nil {
		return RestockResult{}, err
	}
	if err := codeErr(ints[0]); err != nil {
		return RestockResult{}, err
	}
	if len(ints) != 2 {
		return RestockResult{}, fmt.Errorf("stock: restock: unexpected reply %v", v)
	}
	return RestockResult{Restocked: ints[0] == codeOK, Available: ints[1]}, nil
}
