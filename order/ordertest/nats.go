package ordertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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

// NewExternalBroker connects to an external NATS server with streams and
// subjects private to the test (the server is shared); t.Cleanup deletes
// the test's streams and closes the connection.
func NewExternalBroker(t testing.TB, url string) *order.Broker {
	t.Helper()
	return NewReplicatedBroker(t, url, 1)
}

// NewReplicatedBroker is NewExternalBroker with nats.replicas = replicas:
// url lists the nodes of a NATS cluster, comma-separated.
func NewReplicatedBroker(t testing.TB, url string, replicas int) *order.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tag := fmt.Sprintf("T%d", rand.Int64N(1<<40))
	cfg := order.BrokerConfig{URL: url, Stream: tag + "_ORDERS", Subject: "seckilltest." + tag, Replicas: replicas}
	b, err := order.OpenBroker(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	if err != nil {
		t.Fatalf("ordertest: open external broker %s: %v", url, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, name := range []string{cfg.Stream, cfg.Stream + "_TIMEOUTS"} {
			_ = b.JS.DeleteStream(ctx, name)
		}
		b.Close()
	})
	return b
}
