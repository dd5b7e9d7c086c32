package gateway

import (
	"fmt"
	"sync"

	sentinel "github.com/alibaba/sentinel-golang/api"
	"github.com/alibaba/sentinel-golang/core/base"
	"github.com/alibaba/sentinel-golang/core/circuitbreaker"
	"github.com/alibaba/sentinel-golang/core/config"
	"github.com/alibaba/sentinel-golang/core/flow"
	"github.com/alibaba/sentinel-golang/core/hotspot"

	"github.com/seckill/seckill/gateway/api"
)

// Sentinel resources guarded by the gateway.
const (
	// resBuy carries the global QPS rule and the per-user hot-spot rule
	// (parameter 0 is the user id).
	resBuy = "seckill.buy"
	// resRedis carries the circuit breaker that opens on Redis errors.
	resRedis = "seckill.redis"
)

// FlowConfig is the Sentinel rule set of the buy path.
type FlowConfig struct {
	LogDir string // Sentinel's own log and metric files (never ~/logs/csp)
	// BuyQPS caps accepted buy attempts per second on this gateway.
	BuyQPS float64
	// UserQPS caps one user's buy attempts per second (hot-spot parameter rule).
	UserQPS int64
	// BreakerErrors opens the Redis circuit breaker after this many Redis
	// errors within BreakerWindowMs; it half-opens after BreakerRetryMs.
	BreakerErrors   float64
	BreakerWindowMs uint32
	BreakerRetryMs  uint32
}

var sentinelInit struct {
	once sync.Once
	err  error
}

// initSentinel starts Sentinel once per process (its state is global) and
// loads the rules; a later call replaces the rules.
func initSentinel(cfg FlowConfig) error {
	sentinelInit.once.Do(func() {
		c := config.NewDefaultConfig()
		c.Sentinel.App.Name = "seckill"
		c.Sentinel.Log.Dir = cfg.LogDir
		// Sentinel's cached clock is a goroutine waking every millisecond:
		// 27 of an idle gateway's 30 ms of CPU per second. time.Now is a
		// vDSO call; the few per buy cost less than those wake-ups.
		c.Sentinel.UseCacheTime = false
		sentinelInit.err = sentinel.InitWithConfig(c)
	})
	if sentinelInit.err != nil {
		return fmt.Errorf("gateway: sentinel init: %w", sentinelInit.err)
	}
	if _, err := flow.LoadRules([]*flow.Rule{{
		Resource:               resBuy,
		TokenCalculateStrategy: flow.Direct,
		ControlBehavior:        flow.Reject,
		Threshold:              cfg.BuyQPS,
		StatIntervalInMs:       1000,
	}}); err != nil {
		return fmt.Errorf("gateway: sentinel flow rules: %w", err)
	}
	if _, err := hotspot.LoadRules([]*hotspot.Rule{{
		Resource:          resBuy,
		MetricType:        hotspot.QPS,
		ControlBehavior:   hotspot.Reject,
		ParamIndex:        0,
		Threshold:         cfg.UserQPS,
		DurationInSec:     1,
		ParamsMaxCapacity: 200_000,
	}}); err != nil {
		return fmt.Errorf("gateway: sentinel hot-spot rules: %w", err)
	}
	if _, err := circuitbreaker.LoadRules([]*circuitbreaker.Rule{{
		Resource:         resRedis,
		Strategy:         circuitbreaker.ErrorCount,
		RetryTimeoutMs:   cfg.BreakerRetryMs,
		MinRequestAmount: 1,
		StatIntervalMs:   cfg.BreakerWindowMs,
		Threshold:        cfg.BreakerErrors,
	}}); err != nil {
		return fmt.Errorf("gateway: sentinel breaker rules: %w", err)
	}
	return nil
}

// enterBuy admits one buy attempt of a user or says why not. The entry is
// Sentinel's default (outbound) traffic type: inbound would only add the
// global inbound statistics that system-adaptive rules read, and seckill
// loads none (they cost a rules copy and two more counters per buy).
func enterBuy(userID int64) (*base.SentinelEntry, *apiError) {
	e, b := sentinel.Entry(resBuy, sentinel.WithArgs(userID))
	if b != nil {
		return nil, &apiError{Status: 429, Code: api.CodeRateLimited, Message: "rate limited, retry shortly", RetryAfter: 1, cause: fmt.Errorf("%s: %s", b.BlockType(), b.BlockMsg())}
	}
	return e, nil
}

// enterRedis passes the Redis circuit breaker; when it is open the buy is
// answered 503 at once instead of queueing on a failing Redis.
func enterRedis() (*base.SentinelEntry, *apiError) {
	e, b := sentinel.Entry(resRedis)
	if b != nil {
		return nil, unavailable("stock service unavailable (circuit open)", nil)
	}
	return e, nil
}
