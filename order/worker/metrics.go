package worker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the worker side's Prometheus series.
type Metrics struct {
	BatchSize    prometheus.Histogram
	PersistLag   prometheus.Histogram
	Persisted    prometheus.Counter
	Reconciled   prometheus.Counter
	Outstanding  prometheus.Gauge
	PoisonOrders prometheus.Counter
}

// NewMetrics creates the worker metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_persist_batch_size",
			Help:    "Orders per persister batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		PersistLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_persist_lag_seconds",
			Help:    "Time from the buy (reservation) to the order's row being committed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		Persisted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_orders_persisted_total",
			Help: "Orders newly inserted into PostgreSQL by the persister.",
		}),
		Reconciled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_orders_reconciled_total",
			Help: "Orders inserted by the reconciler from reservations that never reached the persister.",
		}),
		Outstanding: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_reservations_outstanding",
			Help: "Reservations in Redis older than the reconcile grace at the last reconciler pass.",
		}),
		PoisonOrders: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_orders_poison_total",
			Help: "Order-created messages that could not be decoded and were terminated.",
		}),
	}
	reg.MustRegister(m.BatchSize, m.PersistLag, m.Persisted, m.Reconciled, m.Outstanding, m.PoisonOrders)
	return m
}
