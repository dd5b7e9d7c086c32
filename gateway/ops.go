package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seckill/seckill/gateway/api"
)

// NewOps returns the ops-only handler (/healthz, /readyz, /metrics) that a
// worker-only process serves.
func NewOps(log *slog.Logger, reg *prometheus.Registry, checks map[string]func(context.Context) error) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(recovery(log))
	mountOps(r, reg, checks)
	return r
}

func mountOps(r *gin.Engine, reg *prometheus.Registry, checks map[string]func(context.Context) error) {
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, api.Health{Status: api.CheckOK}) })
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c, 2*time.Second)
		defer cancel()
		out := api.Readiness{Ready: true, Checks: make(map[string]string, len(checks))}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				out.Ready = false
				out.Checks[name] = api.CheckDown
				continue
			}
			out.Checks[name] = api.CheckOK
		}
		status := http.StatusOK
		if !out.Ready {
			status = http.StatusServiceUnavailable
		}
		c.JSON(status, out)
	})
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
}
