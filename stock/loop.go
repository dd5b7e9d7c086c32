package stock

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Loop is the one lifecycle every background service in seckill shares
// (persister, reconciler, sweeper, semaphore renewal, sold-out poller):
// run runOnce, then again every interval, until ctx is done. A failing pass
// is logged and retried on the next tick; it never stops the loop. Tests call
// the service's RunOnce directly instead of waiting for a tick.
func Loop(ctx context.Context, log *slog.Logger, name string, every time.Duration, runOnce func(context.Context) error) error {
	if every <= 0 {
		return fmt.Errorf("stock: %s: loop interval %v must be positive", name, every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		if err := runOnce(ctx); err != nil && ctx.Err() == nil {
			// Log a repeating error once per change, not once per tick.
			if msg := err.Error(); msg != lastErr {
				log.Warn("background pass failed", "service", name, "err", err)
				lastErr = msg
			}
		} else if err == nil && lastErr != "" {
			log.Info("background pass recovered", "service", name)
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
