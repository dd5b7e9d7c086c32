package gateway

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/gateway/api"
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
	a, err := s.d.Admin.Activity(c, id)
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
	out := api.ActivityInfo{
		ID: api.ID(a.ID), Status: string(a.Status), Name: a.Name,
		StartAt: a.StartAt.UTC(), EndAt: a.EndAt.UTC(),
		PayTimeoutSeconds: int64(a.PayTimeout / time.Second), PerUserLimit: a.PerUserLimit,
		Items: make([]api.ItemInfo, len(a.Items)), ServerTime: time.Now().UTC(),
	}
	for i, it := range a.Items {
		out.Items[i] = api.ItemInfo{
			ID: api.ID(it.ID), Name: it.Name, PriceCents: it.PriceCents, Stock: it.Stock, Available: avail[it.ID],
		}
	}
	c.JSON(http.StatusOK, out)
}

// orderOut is the owner's view of an order.
func orderOut(o order.Order) api.Order {
	out := api.Order{
		OrderID: api.ID(o.ID), ActivityID: api.ID(o.ActivityID), ItemID: api.ID(o.ItemID), UserID: api.ID(o.UserID),
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
