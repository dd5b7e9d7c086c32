package gateway

import (
	"context"
	"errors"
	"fmt"
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
	// Batch shapes the buy batcher New builds over Stock and Publisher,
	// the one way a buy reaches Redis; New sets its latency observers.
	Batch     stock.BatchConfig
	SoldOut   *stock.SoldOut
	Semaphore *stock.Semaphore
	Node      *stock.NodeLease
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL time.Duration

	// The order side: the services the handlers call, and the queue.
	Catalog *order.Catalog
	Admin   *order.Admin
	Orders  *order.Orders
	// Publisher publishes each buy round trip's orders to the order stream
	// before their requests are answered: an *order.Publisher (tests wrap
	// one to inject faults).
	Publisher stock.Forwarder
	Broker    *order.Broker
}

// Server is the HTTP handler of a gateway.
type Server struct {
	d       Deps
	m       *metrics
	batcher *stock.Batcher
	engine  *gin.Engine
}

// New builds the router. It loads the Sentinel rules from d.Flow.
func New(d Deps) (*Server, error) {
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 4 << 10
	}
	if bad := unknownAblations(); len(bad) > 0 {
		return nil, fmt.Errorf("gateway: %s names no fast path: %v (known: %v)", AblateEnv, bad, FastPaths)
	}
	if d.Publisher == nil {
		return nil, errors.New("gateway: Deps.Publisher is required: a buy is accepted only once its order is published")
	}
	if err := initSentinel(d.Flow); err != nil {
		return nil, err
	}
	s := &Server{d: d, m: newMetrics(d.Registry)}
	batch := d.Batch
	batch.ScriptSeconds, batch.ForwardSeconds = s.m.luaLatency, s.m.pubLatency
	s.batcher = stock.NewBatcher(d.Stock, d.Publisher, batch)
	registerBatcherMetrics(d.Registry, s.batcher)
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
