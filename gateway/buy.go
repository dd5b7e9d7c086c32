package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	sentinel "github.com/alibaba/sentinel-golang/api"
	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/stock"
)

type buyRequest struct {
	ActivityID ID          `json:"activity_id"`
	ItemID     ID          `json:"item_id"`
	Quantity   json.Number `json:"quantity"`
}

const outcomeAccepted = "ACCEPTED"

// maxIdempotencyKey bounds the Idempotency-Key header (it becomes a Redis key).
const maxIdempotencyKey = 64

// buy is POST /api/v1/seckill, the hot path. Order of the checks: cheapest
// and local first, so a rush that cannot succeed costs no Redis call:
// Sentinel → body → catalog → sold-out flag → broker up → semaphore →
// circuit breaker → order id → the one buy script → publish → 202.
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

	res, err := s.reserve(c, stock.BuyRequest{
		ActivityID: item.ActivityID, ItemID: item.ItemID, UserID: user,
		Quantity: qty, IdempotencyKey: idemKey, IdempotencyTTL: s.d.IdempotencyTTL,
	})
	if err != nil {
		fail(err)
		return
	}
	switch {
	case res.Forwarded: // published with its round trip's other orders
		if res.ForwardErr != nil {
			fail(res.ForwardErr)
			return
		}
	case !res.Duplicate || res.ReservationFound:
		if err := s.publish(c, res.Reservation); err != nil {
			fail(err)
			return
		}
	}
	// The hot path's one response, written without reflection.
	out := make([]byte, 0, 64)
	out = append(out, `{"order_id":"`...)
	out = strconv.AppendInt(out, res.OrderID, 10)
	out = append(out, `","status":"PENDING"}`...)
	c.Data(http.StatusAccepted, "application/json; charset=utf-8", out)
}

// reserve runs the buy script behind the Redis circuit breaker. Only
// infrastructure errors count against the breaker; business outcomes
// (sold out, limit) are answers, not failures.
func (s *Server) reserve(ctx context.Context, r stock.BuyRequest) (stock.BuyResult, error) {
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
	start := time.Now()
	res, err := s.d.Buyer.Buy(ctx, r)
	end := time.Now()
	if !res.ScriptDone.IsZero() {
		end = res.ScriptDone // the call also waited for its round trip's publishes
	}
	s.m.luaLatency.Observe(end.Sub(start).Seconds())
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, stock.ErrSoldOut):
		if res.Available == 0 {
			s.d.SoldOut.Mark(r.ActivityID, r.ItemID)
		}
		return res, err
	case errors.Is(err, stock.ErrNotPublished):
		// The catalog says published but Redis has no state: Redis lost it.
		// Never sell from missing state; recovery rebuilds it.
		if s.d.OnStateMissing != nil {
			s.d.OnStateMissing(r.ActivityID, r.ItemID)
		}
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

// publish hands the accepted order to JetStream. If it fails the stock stays
// reserved: the message may have been stored anyway, and if not, the
// reconciler persists the reservation. The client is told honestly that the
// order is not confirmed; a retry with the same Idempotency-Key returns it.
func (s *Server) publish(ctx context.Context, r stock.Reservation) error {
	if s.d.Hooks.BeforePublish != nil {
		if err := s.d.Hooks.BeforePublish(ctx, r); err != nil {
			return unavailable("order could not be confirmed", err)
		}
	}
	start := time.Now()
	// The stock is reserved: finish the publish even if the client left, so
	// the order takes the fast path rather than the reconciler's.
	err := s.d.Publisher.Publish(context.WithoutCancel(ctx), r)
	s.m.pubLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		return unavailable("order could not be confirmed, retry with the same Idempotency-Key", err)
	}
	return nil
}

// publishRound is the batcher's forwarder: it publishes the orders one
// buy round trip reserved, together, with one answer per order worded as
// publish's. Each order's own request is waiting for it.
func (s *Server) publishRound(ctx context.Context, rs []stock.Reservation) []error {
	errs := make([]error, len(rs))
	send := make([]stock.Reservation, 0, len(rs))
	at := make([]int, 0, len(rs))
	for i, r := range rs {
		if s.d.Hooks.BeforePublish != nil {
			if err := s.d.Hooks.BeforePublish(ctx, r); err != nil {
				errs[i] = unavailable("order could not be confirmed", err)
				continue
			}
		}
		send = append(send, r)
		at = append(at, i)
	}
	if len(send) == 0 {
		return errs
	}
	start := time.Now()
	perrs := s.d.Publisher.PublishMany(context.WithoutCancel(ctx), send)
	took := time.Since(start).Seconds()
	for k, err := range perrs {
		s.m.pubLatency.Observe(took)
		if err != nil {
			errs[at[k]] = unavailable("order could not be confirmed, retry with the same Idempotency-Key", err)
		}
	}
	return errs
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
