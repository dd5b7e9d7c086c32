package gateway

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/order"
)

// activityOut is the admin view of an activity.
func activityOut(a order.Activity) api.Activity {
	out := api.Activity{
		ID: api.ID(a.ID), Status: string(a.Status), Name: a.Name,
		StartAt: a.StartAt.UTC(), EndAt: a.EndAt.UTC(),
		PayTimeoutSeconds: int64(a.PayTimeout / time.Second), PerUserLimit: a.PerUserLimit,
		Items: make([]api.Item, len(a.Items)),
	}
	for i, it := range a.Items {
		out.Items[i] = api.Item{ID: api.ID(it.ID), Name: it.Name, PriceCents: it.PriceCents, Stock: it.Stock}
	}
	return out
}

// createActivity is POST /admin/v1/activities.
func (s *Server) createActivity(c *gin.Context) {
	var req api.CreateActivityRequest
	body, ae := readBody(c)
	if ae != nil {
		_ = c.Error(ae)
		return
	}
	// Unmarshal, unlike a Decoder, refuses data after the JSON value.
	if err := json.Unmarshal(body, &req); err != nil {
		_ = c.Error(badRequest("malformed JSON body: " + jsonProblem(err)))
		return
	}
	a := order.Activity{
		Name: req.Name, StartAt: req.StartAt.UTC(), EndAt: req.EndAt.UTC(),
		PayTimeout: time.Duration(req.PayTimeoutSeconds) * time.Second, PerUserLimit: req.PerUserLimit,
	}
	for _, it := range req.Items {
		a.Items = append(a.Items, order.Item{Name: it.Name, PriceCents: it.PriceCents, Stock: it.Stock})
	}
	created, err := s.d.Admin.Create(c, a, time.Now())
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.d.Log.Info("activity created", "activity_id", created.ID, "items", len(created.Items))
	c.JSON(http.StatusCreated, activityOut(created))
}

// publishActivity is POST /admin/v1/activities/{id}/publish.
func (s *Server) publishActivity(c *gin.Context) {
	id, ae := pathID(c)
	if ae != nil {
		_ = c.Error(ae)
		return
	}
	a, err := s.d.Admin.Publish(c, id)
	if err != nil {
		_ = c.Error(err)
		return
	}
	// This gateway sells at once; the others see it at their next refresh.
	if err := s.d.Catalog.Refresh(c); err != nil {
		s.d.Log.Warn("catalog refresh after publish failed", "err", err)
	}
	s.d.Log.Info("activity published", "activity_id", a.ID)
	c.JSON(http.StatusOK, activityOut(a))
}

// activityStats is GET /admin/v1/activities/{id}/stats.
func (s *Server) activityStats(c *gin.Context) {
	id, ae := pathID(c)
	if ae != nil {
		_ = c.Error(ae)
		return
	}
	a, stats, err := s.d.Admin.Stats(c, id)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := api.ActivityStats{ActivityID: api.ID(a.ID), Status: string(a.Status), Items: make([]api.ItemStats, len(stats))}
	for i, st := range stats {
		out.Items[i] = api.ItemStats{
			ItemID: api.ID(st.ItemID), StockTotal: st.StockTotal, Available: st.Available,
			Reserved: st.Reserved, Pending: st.Pending, Paid: st.Paid, Cancelled: st.Cancelled,
			Returning: st.Returning, Consistent: st.Consistent,
		}
	}
	c.JSON(http.StatusOK, out)
}

// jsonProblem names what is wrong in a body without echoing it back.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return "field " + e.Field + " has the wrong type"
	case *time.ParseError:
		return "times must be RFC 3339"
	}
	return "not a JSON object"
}
