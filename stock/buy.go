package stock

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// DefaultIdempotencyTTL is how long an Idempotency-Key is remembered when
// BuyRequest.IdempotencyTTL is zero.
const DefaultIdempotencyTTL = 24 * time.Hour

// BuyRequest is one buy attempt. OrderID is minted by the caller (Snowflake)
// before the call, so the reservation and the published order share it.
type BuyRequest struct {
	ActivityID, ItemID, UserID, OrderID int64
	// Quantity is the units to buy, ≥ 1.
	Quantity int64
	// IdempotencyKey is optional; when set, a retry with the same user and key
	// returns the first order instead of buying again.
	IdempotencyKey string
	// IdempotencyTTL is how long the key is remembered; DefaultIdempotencyTTL when 0.
	IdempotencyTTL time.Duration
}

// BuyResult is the outcome of a buy that was accepted or recognised as a duplicate.
type BuyResult struct {
	// OrderID is the new order, or the earlier order when Duplicate.
	OrderID int64
	// Duplicate is set when the same user and Idempotency-Key were seen
	// before: nothing changed and OrderID is the earlier order.
	Duplicate bool
	// Reservation is the record written (or, for a Duplicate, the earlier one
	// when ReservationFound).
	Reservation Reservation
	// ReservationFound is, for a Duplicate, false when the earlier reservation
	// was already cleared because its order was persisted. Always true for a
	// new order.
	ReservationFound bool
	// Available is the units left after this call. With ErrSoldOut it is what
	// was available: only Available == 0 means the item is really sold out
	// (a buy of 2 with 1 left is refused too), so mark SoldOut only then.
	Available int64
}

// Buy runs the buy script: one atomic Redis call that checks publication, the
// idempotency key, the sale window, the per-user limit and stock, in that
// order, and only when all pass deducts stock, counts the buyer and writes the
// reservation. Refusals are ErrNotPublished, ErrNotStarted, ErrEnded,
// ErrLimitExceeded or ErrSoldOut and change nothing; any other error is an
// infrastructure failure, after which the outcome is unknown (the reservation
// index lets the reconciler find an order that was in fact accepted).
//
// Buy reserves only. The gateway buys through a Batcher, which also hands
// the reservation on to the order stream; Buy alone serves tests, tools and
// the bench's Redis-only baseline.
func (s *Store) Buy(ctx context.Context, r BuyRequest) (BuyResult, error) {
	keys, args, err := s.buyArgs(r)
	if err != nil {
		return BuyResult{}, err
	}
	v, err := buyScript.Run(ctx, s.rdb, keys, args...).Result()
	return parseBuy(r, v, err)
}

// buyArgs validates a request and builds the script's KEYS and ARGV.
func (s *Store) buyArgs(r BuyRequest) ([]string, []any, error) {
	if r.Quantity < 1 {
		return nil, nil, fmt.Errorf("stock: buy: quantity %d must be >= 1", r.Quantity)
	}
	if r.OrderID <= 0 {
		return nil, nil, fmt.Errorf("stock: buy: order id %d must be > 0", r.OrderID)
	}
	ttl := r.IdempotencyTTL
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	aid, iid := r.ActivityID, r.ItemID
	keys := make([]string, 4, 5)
	keys[0], keys[1], keys[2], keys[3] = s.keys.Item(aid, iid), s.keys.Buyers(aid, iid),
		s.keys.Reservations(aid, iid), s.keys.ReservationTimes(aid, iid)
	if r.IdempotencyKey != "" {
		keys = append(keys, s.keys.Idempotency(aid, iid, r.UserID, r.IdempotencyKey))
	}
	ttlSeconds := int64((ttl + time.Second - 1) / time.Second)
	args := []any{strconv.FormatInt(r.OrderID, 10), strconv.FormatInt(r.UserID, 10), r.Quantity, ttlSeconds,
		strconv.FormatInt(aid, 10), strconv.FormatInt(iid, 10)}
	return keys, args, nil
}

// parseBuy maps the script's reply (or the call's error) to a result.
func parseBuy(r BuyRequest, v any, err error) (BuyResult, error) {
	if err != nil {
		return BuyResult{}, fmt.Errorf("stock: buy order %d: %w", r.OrderID, err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return BuyResult{}, fmt.Errorf("stock: buy: unexpected reply %v", v)
	}
	code, _ := arr[0].(int64)
	if code == codeDuplicate {
		return duplicateResult(arr)
	}
	ints, err := replyInts("buy", v, 1)
	if err != nil {
		return BuyResult{}, err
	}
	aid, iid := r.ActivityID, r.ItemID
	switch code {
	case codeOK:
		if len(ints) != 5 {
			return BuyResult{}, fmt.Errorf("stock: buy: unexpected reply %v", v)
		}
		return BuyResult{
			OrderID:          r.OrderID,
			ReservationFound: true,
			Available:        ints[1],
			Reservation: Reservation{
				OrderID: r.OrderID, ActivityID: aid, ItemID: iid, UserID: r.UserID,
				Quantity: r.Quantity, AmountCents: ints[4],
				CreatedAt: time.UnixMilli(ints[2]), ExpireAt: time.UnixMilli(ints[3]),
			},
		}, nil
	case codeSoldOut:
		if len(ints) != 2 {
			return BuyResult{}, fmt.Errorf("stock: buy: unexpected reply %v", v)
		}
		return BuyResult{Available: ints[1]}, ErrSoldOut
	}
	return BuyResult{}, codeErr(code)
}

// duplicateResult decodes {1, order_id, reservation_json|nil, available}.
func duplicateResult(arr []any) (BuyResult, error) {
	if len(arr) != 4 {
		return BuyResult{}, fmt.Errorf("stock: buy: unexpected duplicate reply %v", arr)
	}
	idStr, _ := arr[1].(string)
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil {
		return BuyResult{}, fmt.Errorf("stock: buy: stored order id %q: %w", idStr, err)
	}
	res := BuyResult{OrderID: id, Duplicate: true}
	res.Available, _ = arr[3].(int64)
	if raw, ok := arr[2].(string); ok {
		if err := res.Reservation.UnmarshalJSON([]byte(raw)); err != nil {
			return BuyResult{}, fmt.Errorf("stock: buy: earlier reservation of order %d: %w", id, err)
		}
		res.ReservationFound = true
	}
	return res, nil
}
