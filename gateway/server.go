package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
)

// Deps is everything the gateway needs, built and owned by cmd/seckill.
// The handlers reach PostgreSQL only through the order services (Catalog,
// Admin, Orders), never through the store itself.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Checks are the readiness probes by dependency name.
	Checks map[string]func(context.Context) error

	// The edge: who may call, how much they may send, how fast.
	Auth   *Auth
	Signer *Signer
	Flow   FlowConfig
	// MaxBodyBytes caps request bodies (default 4 KiB).
	MaxBodyBytes int64

	// The stock side of a buy (Redis).
	Stock *stock.Store
	// Buyer runs the buy script: the Store itself, or a Batcher that
	// coalesces concurrent calls into pipelines. A Buyer that can forward
	// (stock.Batcher) is given the gateway's publisher, so the orders of a
	// round trip are published together.
	Buyer     Buyer
	SoldOut   *stock.SoldOut
	Semaphore *stock.Semaphore
	Node      *stock.NodeLease
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL time.Duration

	// The order side: the services the handlers call, and the queue.
	Catalog   *order.Catalog
	Admin     *order.Admin
	Orders    *order.Orders
	Publisher *order.Publisher
	Broker    *order.Broker

	// OnStateMissing is told when an item the catalog sells has no Redis
	// state (Redis lost it); recovery hooks in here.
	OnStateMissing func(activityID, itemID int64)
	// Hooks are fault-injection points for tests; nil in production.
	Hooks Hooks
}

// Buyer runs one buy attempt's script.
type Buyer interface {
	Buy(ctx context.Context, r stock.BuyRequest) (stock.BuyResult, error)
}

// forwardingBuyer is a Buyer that can hand each round trip's reservations
// to a forwarder before answering (stock.Batcher).
type forwardingBuyer interface {
	SetForward(stock.Forwarder)
}

// Hooks lets tests stop the buy path at chosen points.
type Hooks struct {
	// BeforePublish runs after the buy script reserved stock and before the
	// order is published; an error aborts the request there, as if the
	// gateway died at that moment. Behind a batcher it runs in the round
	// trip's sender with the round trip's context, not the request's.
	BeforePublish func(ctx context.Context, r stock.Reservation) error
}

// Server is the HTTP handler of a gateway.
type Server struct {
	d      Deps
	m      *metrics
	engine *gin.Engine
}

// New builds the router. It loads the Sentinel rules from d.Flow.
func New(d Deps) (*Server, error) {
	if d.Buyer == nil {
		d.Buyer = d.Stock
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 4 << 10
	}
	if err := initSentinel(d.Flow); err != nil {
		return nil, err
	}
	s := &Server{d: d, m: newMetrics(d.Registry)}
	if fb, ok := d.Buyer.(forwardingBuyer); ok && d.Publisher != nil {
		fb.SetForward(s.publishRound)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	r.Use(recovery(d.Log), limitBody(d.MaxBodyBytes), errorMiddleware(d.Log))
	r.NoRoute(func(c *gin.Context) { writeError(c, errNotFound) })
	r.HandleMethodNotAllowed = false
	mountOps(r, d.Registry, d.Checks)

	admin := r.Group("/admin/v1", d.Auth.requireAdmin())
	admin.POST("/activities", s.createActivity)
	admin.POST("/activities/:id/publish", s.publishActivity)
	admin.GET("/activities/:id/stats", s.activityStats)

	api := r.Group("/api/v1")
	api.GET("/activities/:id", s.activityInfo)
	user := api.Group("", d.Auth.requireUser())
	user.POST("/seckill", s.buy)
	user.GET("/orders/:id", s.getOrder)
	user.POST("/orders/:id/cancel", s.cancelOrder)
	api.POST("/payments/callback", s.paymentCallback)
	s.engine = r
	return s, nil
}

// Handler returns the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.engine }

// recovery turns a panic into a logged 500 with the standard error body.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		log.Error("panic in handler", "path", c.FullPath(), "panic", rec)
		writeError(c, newError(http.StatusInternalServerError, api.CodeInternal, "internal error"))
	})
}
