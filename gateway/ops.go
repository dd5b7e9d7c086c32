package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c, 2*time.Second)
		defer cancel()
		status, body := http.StatusOK, gin.H{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status = http.StatusServiceUnavailable
				body[name] = "down"
				continue
			}
			body[name] = "ok"
		}
		c.JSON(status, gin.H{"ready": status == http.StatusOK, "checks": body})
	})
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
}
