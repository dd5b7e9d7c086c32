package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	sentinel "github.com/alibaba/sentinel-golang/api"
	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/stock"
)

type buyRequest struct {
	ActivityID ID       `json:"activity_id"`
	ItemID     ID       `json:"item_id"`
	Quantity   quantity `json:"quantity"`
}

// quantity is the buy's quantity as the JSON number it was written as.
// Unlike json.Number it refuses a quoted number ("1"): a quantity has one
// spelling, a JSON integer. The handler then requires it to be a whole
// number from 1 to the item's limit (1.0 and 1e0 are not).
type quantity string

// UnmarshalJSON keeps a JSON number as written; null reads as missing, and
// anything else (a string, a boolean) is an error.
func (q *quantity) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errors.New("quantity must be a JSON number")
	}
	*q = quantity(b)
	return nil
}

const outcomeAccepted = "ACCEPTED"

// maxIdempotencyKey bounds the Idempotency-Key header (it becomes a Redis key).
const maxIdempotencyKey = 64

// buy is POST /api/v1/seckill, the hot path. Order of the checks: cheapest
// and local first, so a rush that cannot succeed costs no Redis call:
// Sentinel → body → catalog → sold-out flag → broker up → semaphore →
// circuit breaker → order id → the one buy script and its order's publish
// (one batcher call) → 202.
func (s *Server) buy(c *gin.Context) {
	outcome := outcomeAccepted
	defer func() { s.m.countBuy(outcome) }()
	fail := func(err error) {
		ae := toAPIError(err)
		outcome = ae.Code
		_ = c.Error(ae)
	}
	user := caller(c).UserID

	entry, blocked := enterBuy(user)
	if blocked != nil {
		fail(blocked)
		return
	}
	defer entry.Exit()

	body, ae := readBody(c)
	if ae != nil {
		fail(ae)
		return
	}
	req, err := parseBuyBody(body)
	if err != nil {
		fail(badRequest("malformed JSON body"))
		return
	}
	if req.ActivityID == 0 || req.ItemID == 0 {
		fail(badRequest("activity_id and item_id are required"))
		return
	}
	idemKey := c.GetHeader("Idempotency-Key")
	if !validIdempotencyKey(idemKey) {
		fail(badRequest("Idempotency-Key must be 1-64 characters of [A-Za-z0-9_.:-]"))
		return
	}
	item, ok, err := s.d.Catalog.Item(c, int64(req.ActivityID), int64(req.ItemID))
	if err != nil {
		fail(unavailable("catalog unavailable", err))
		return
	}
	if !ok {
		fail(errNotFound)
		return
	}
	qty, err := strconv.ParseInt(string(req.Quantity), 10, 64)
	if err != nil || qty < 1 || qty > item.PerUserLimit {
		fail(newError(http.StatusBadRequest, CodeInvalidQuantity,
			"quantity must be a whole number from 1 to "+strconv.FormatInt(item.PerUserLimit, 10)))
		return
	}
	if s.d.SoldOut.Known(item.ActivityID, item.ItemID) {
		// A resend of an accepted buy must get its 202 back, sold out or
		// not: one GET tells whether this key already has an order.
		held := false
		if idemKey != "" {
			if held, err = s.d.Stock.HasIdempotencyKey(c, item.ActivityID, item.ItemID, user, idemKey); err != nil {
				fail(unavailable("stock service unavailable", err))
				return
			}
		}
		if !held {
			fail(stock.ErrSoldOut)
			return
		}
	}
	if !s.d.Broker.Connected() {
		fail(unavailable("order queue unavailable", nil))
		return
	}
	release, err := s.d.Semaphore.Acquire(c)
	if err != nil {
		if !errors.Is(err, stock.ErrBusy) {
			err = unavailable("stock service unavailable", err)
		}
		fail(err)
		return
	}
	defer release()

	res, err := s.place(c, stock.BuyRequest{
		ActivityID: item.ActivityID, ItemID: item.ItemID, UserID: user,
		Quantity: qty, IdempotencyKey: idemKey, IdempotencyTTL: s.d.IdempotencyTTL,
	})
	if err != nil {
		fail(err)
		return
	}
	writeAccepted(c, res.OrderID)
}

// noFast202 switches the hand-built 202 off (SECKILL_ABLATE=resp202).
var noFast202 = ablated["resp202"]

// writeAccepted writes the hot path's one response,
// {"order_id":"<id>","status":"PENDING"}, without reflection.
func writeAccepted(c *gin.Context, orderID int64) {
	if noFast202 {
		c.JSON(http.StatusAccepted, api.BuyAccepted{OrderID: api.ID(orderID), Status: api.OrderPending})
		return
	}
	out := make([]byte, 0, 64)
	out = append(out, `{"order_id":"`...)
	out = strconv.AppendInt(out, orderID, 10)
	out = append(out, `","status":"PENDING"}`...)
	c.Data(http.StatusAccepted, "application/json; charset=utf-8", out)
}

// place reserves the stock and publishes the order, in one call of the
// batcher (stock.Batcher.Buy: the buy script in a shared Redis round trip,
// then that round trip's orders published together), behind the Redis
// circuit breaker. Only Redis failures count against the breaker; business
// outcomes (sold out, limit) are answers, a failed publish is the order
// stream's failure, and a client that left is nobody's.
func (s *Server) place(ctx context.Context, r stock.BuyRequest) (stock.BuyResult, error) {
	e, blocked := enterRedis()
	if blocked != nil {
		return stock.BuyResult{}, blocked
	}
	defer e.Exit()
	id, err := s.d.Node.NextID()
	if err != nil {
		return stock.BuyResult{}, err
	}
	r.OrderID = id
	res, err := s.batcher.Buy(ctx, r)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, stock.ErrNotForwarded):
		// The stock stays reserved: the message may have been stored
		// anyway, and if not, the reconciler persists the reservation. The
		// client is told honestly that the order is not confirmed.
		return res, unavailable("order could not be confirmed, retry with the same Idempotency-Key", err)
	case errors.Is(err, stock.ErrNotReplicated):
		// redis.durability replica: the reservation may not survive a
		// failover, so no order was placed. If the master keeps it, the
		// reconciler places the order; a retry with the same
		// Idempotency-Key finds it either way.
		return res, &apiError{Status: http.StatusServiceUnavailable, Code: api.CodeStockUnconfirmed,
			Message:    "purchase not confirmed by a Redis replica, retry with the same Idempotency-Key",
			RetryAfter: 1, cause: err}
	case errors.Is(err, stock.ErrSoldOut):
		if res.Available == 0 {
			s.d.SoldOut.Mark(r.ActivityID, r.ItemID)
		}
		return res, err
	case errors.Is(err, stock.ErrNotPublished):
		// The catalog says published but Redis has no state: Redis lost it.
		// Never sell from missing state; recovery rebuilds it.
		return res, unavailable("stock state is being recovered, retry shortly", err)
	case isBusinessOutcome(err):
		return res, err
	case ctx.Err() != nil:
		// The client went away; Redis did nothing wrong. Counting this
		// would let anyone open the breaker by disconnecting.
		return res, unavailable("request cancelled", err)
	}
	sentinel.TraceError(e, err)
	return res, unavailable("stock service unavailable", err)
}

func isBusinessOutcome(err error) bool {
	return errors.Is(err, stock.ErrLimitExceeded) || errors.Is(err, stock.ErrNotStarted) ||
		errors.Is(err, stock.ErrEnded)
}

func validIdempotencyKey(k string) bool {
	if k == "" {
		return true
	}
	if len(k) > maxIdempotencyKey {
		return false
	}
	for _, r := range k {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '.' || r == ':' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}
