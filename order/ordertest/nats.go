package ordertest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
)

// BrokerConfig returns an embedded-broker configuration private to the test:
// its own JetStream store directory, in-process connections only.
func BrokerConfig(t testing.TB) order.BrokerConfig {
	return order.BrokerConfig{
		DataDir: t.TempDir(),
		Stream:  "SECKILL_ORDERS",
		Subject: "seckill.orders",
	}
}

// NewBroker starts an embedded NATS server for the test and connects to it;
// t.Cleanup closes both.
func NewBroker(t testing.TB) *order.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := order.OpenBroker(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), BrokerConfig(t))
	if err != nil {
		t.Fatalf("ordertest: open broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}
