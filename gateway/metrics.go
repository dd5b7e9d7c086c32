package gateway

import "github.com/prometheus/client_golang/prometheus"

// metrics are the gateway's Prometheus series.
type metrics struct {
	buys       *prometheus.CounterVec
	luaLatency prometheus.Histogram
	pubLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		buys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_buys_total",
			Help: "Buy attempts by outcome (ACCEPTED or the error code).",
		}, []string{"outcome"}),
		luaLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_buy_script_seconds",
			Help:    "Latency of the buy Lua script call.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		pubLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_order_publish_seconds",
			Help:    "Latency of publishing an accepted order to JetStream.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	reg.MustRegister(m.buys, m.luaLatency, m.pubLatency)
	return m
}
