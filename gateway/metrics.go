package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/seckill/gateway/api"
)

// metrics are the gateway's Prometheus series.
type metrics struct {
	buys *prometheus.CounterVec
	// The two outcomes of a rush, resolved once: a label lookup per buy
	// hashes the label value.
	buysAccepted, buysSoldOut prometheus.Counter
	luaLatency                prometheus.Histogram
	pubLatency                prometheus.Histogram
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
	m.buysAccepted = m.buys.WithLabelValues(outcomeAccepted)
	m.buysSoldOut = m.buys.WithLabelValues(api.CodeSoldOut)
	reg.MustRegister(m.buys, m.luaLatency, m.pubLatency)
	return m
}

// countBuy counts one buy attempt's outcome.
func (m *metrics) countBuy(outcome string) {
	switch outcome {
	case outcomeAccepted:
		m.buysAccepted.Inc()
	case api.CodeSoldOut:
		m.buysSoldOut.Inc()
	default:
		m.buys.WithLabelValues(outcome).Inc()
	}
}
