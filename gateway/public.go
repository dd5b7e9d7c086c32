package gateway

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/order"
)

// activityInfo is GET /api/v1/activities/{id}: the window, the server's
// clock for countdowns, and each item's available stock. Drafts are 404.
func (s *Server) activityInfo(c *gin.Context) {
	id, ae := pathID(c)
	if ae != nil {
		_ = c.Error(ae)
		return
	}
	a, err := s.d.Store.Activity(c, id)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if a.Status != order.ActivityPublished {
		_ = c.Error(errNotFound)
		return
	}
	ids := make([]int64, len(a.Items))
	for i, it := range a.Items {
		ids[i] = it.ID
	}
	avail, err := s.d.Stock.Available(c, a.ID, ids)
	if err != nil {
		_ = c.Error(unavailable("stock service unavailable", err))
		return
	}
	out := activityOut(a)
	now := time.Now().UTC()
	out.ServerTime = &now
	for i := range out.Items {
		v := avail[int64(out.Items[i].ID)]
		out.Items[i].Available = &v
	}
	c.JSON(http.StatusOK, out)
}

type orderJSON struct {
	OrderID      ID         `json:"order_id"`
	ActivityID   ID         `json:"activity_id"`
	ItemID       ID         `json:"item_id"`
	UserID       ID         `json:"user_id"`
	Quantity     int64      `json:"quantity"`
	AmountCents  int64      `json:"amount_cents"`
	Status       string     `json:"status"`
	CancelReason *string    `json:"cancel_reason"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpireAt     time.Time  `json:"expire_at"`
	PaidAt       *time.Time `json:"paid_at"`
	CancelledAt  *time.Time `json:"cancelled_at"`
}

func orderOut(o order.Order) orderJSON {
	out := orderJSON{
		OrderID: ID(o.ID), ActivityID: ID(o.ActivityID), ItemID: ID(o.ItemID), UserID: ID(o.UserID),
		Quantity: o.Quantity, AmountCents: o.AmountCents, Status: string(o.Status),
		CreatedAt: o.CreatedAt.UTC(), ExpireAt: o.ExpireAt.UTC(), PaidAt: utc(o.PaidAt), CancelledAt: utc(o.CancelledAt),
	}
	if o.CancelReason != "" {
		r := string(o.CancelReason)
		out.CancelReason = &r
	}
	return out
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// getOrder is GET /api/v1/orders/{id}: the owner sees the order from the
// moment the buy returned 202; everyone else gets 404, as if it did not exist.
func (s *Server) getOrder(c *gin.Context) {
	id, ae := pathID(c)
	if ae != nil {
		_ = c.Error(ae)
		return
	}
	o, err := s.d.Orders.Get(c, id, caller(c).UserID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, orderOut(o))
}
