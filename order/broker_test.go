package order_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
)

// TestBrokerReplicas: on a 3-node JetStream cluster the order stream gets
// nats.replicas (read back from the server), a process with a higher
// setting scales an existing stream up, one with a lower setting leaves it
// alone, and asking for more replicas than there are nodes (or any on the
// embedded single server) fails and says why.
func TestBrokerReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	t.Parallel()
	nc := cluster.NewNATSCluster(t, 3)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(replicas int) (*order.Broker, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := order.OpenBroker(ctx, log, order.BrokerConfig{URL: nc.URLs(), Stream: "ORDERS",
			Subject: "seckilltest", Replicas: replicas})
		if err == nil {
			t.Cleanup(b.Close)
		}
		return b, err
	}
	// replicas is the stream's configured replicas, once that many peers
	// are current.
	replicas := func(b *order.Broker, want int) {
		t.Helper()
		cluster.Eventually(t, 30*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := b.JS.Stream(ctx, "ORDERS")
			if err != nil {
				return false
			}
			info, err := s.Info(ctx)
			if err != nil || info.Config.Replicas != want || info.Cluster == nil {
				return false
			}
			current := 1
			for _, p := range info.Cluster.Replicas {
				if p.Current {
					current++
				}
			}
			return current == want
		})
	}

	// Five processes starting at once on a fresh cluster all get the
	// stream (some of their set-up requests go unanswered and are retried).
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			b, err := order.OpenBroker(ctx, log, order.BrokerConfig{URL: nc.URLs(), Stream: "RUSH",
				Subject: "seckillrush", Replicas: 3})
			if err == nil {
				b.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d of 5 starting at once: %v", i, err)
		}
	}

	b1, err := open(1)
	if err != nil {
		t.Fatal(err)
	}
	replicas(b1, 1)
	b3, err := open(3)
	if err != nil {
		t.Fatal(err)
	}
	replicas(b3, 3)
	if _, err := open(1); err != nil {
		t.Fatal(err)
	}
	replicas(b1, 3)

	if _, err := open(5); err == nil || !strings.Contains(err.Error(), "nats.replicas=5 needs a JetStream cluster of at least 5 nodes") {
		t.Fatalf("5 replicas on 3 nodes: %v, want an error naming nats.replicas", err)
	}
	cfg := ordertest.BrokerConfig(t)
	cfg.Replicas = 3
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if b, err := order.OpenBroker(ctx, log, cfg); err == nil || !strings.Contains(err.Error(), "nats.replicas=3") {
		if b != nil {
			b.Close()
		}
		t.Fatalf("3 replicas on the embedded server: %v, want an error naming nats.replicas", err)
	}
}
