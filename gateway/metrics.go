package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/stock"
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

// registerBatcherMetrics exports the buy batcher's counters: calls/round
// trips is the mean batch size, which is what the linger buys.
func registerBatcherMetrics(reg prometheus.Registerer, b *stock.Batcher) {
	for _, c := range []struct {
		name, help string
		get        func(stock.BatchStats) int64
	}{
		{"seckill_buy_script_round_trips_total", "Round trips to Redis that carried buy scripts.",
			func(s stock.BatchStats) int64 { return s.Batches }},
		{"seckill_buy_script_calls_total", "Buy scripts sent in those round trips.",
			func(s stock.BatchStats) int64 { return s.Calls }},
		{"seckill_buy_script_lingers_total", "Round trips whose sender first waited buy.redis_linger for others.",
			func(s stock.BatchStats) int64 { return s.Lingered }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.get(b.Stats())) }))
	}
}
