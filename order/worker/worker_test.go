package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order/worker"
)

// A started worker persists what the gateway publishes and cancels what is
// not paid; Stop returns once every service has stopped, and a second Start
// is refused.
func TestWorkerStartStop(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{cfg: worker.Config{Persisters: 2}})
	aid, iid := f.publish(t, 20, time.Second)
	if err := f.w.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Start(f.ctx); !errors.Is(err, worker.ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	f.publishOrders(t, f.buy(t, aid, iid, 1, 10))
	cluster.Eventually(t, 20*time.Second, func() bool {
		return f.countRows(t, "activity_id = $1 AND status = 'CANCELLED' AND stock_returned", aid) == 10
	})
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	f.w.Stop(ctx)
	if ctx.Err() != nil {
		t.Fatal("Stop needed a hard stop: a soft stop should finish within AckWait")
	}
	if s := f.snapshot(t, aid, iid); s.Available != 20 {
		t.Fatalf("after the worker: %+v, want every unit back", s)
	}
}
