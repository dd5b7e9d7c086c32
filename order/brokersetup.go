package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Setting up a stream or a consumer on a JetStream cluster that is starting,
// electing a leader or busy with other processes creating the same stream
// can take longer than one API call's timeout. Set-up calls are idempotent,
// so they are retried until setupBudget has passed.
const (
	setupBudget  = time.Minute
	setupAttempt = 10 * time.Second
)

// retrySetup runs f (one idempotent JetStream set-up call) until it
// succeeds, fails for a reason waiting cannot fix, or setupBudget passes.
func retrySetup(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, setupBudget)
	defer cancel()
	wait := 250 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(ctx, setupAttempt)
		err := f(actx)
		acancel()
		if err == nil || !transientSetup(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// transientSetup reports whether a set-up call may succeed if tried again:
// no answer in time, or a cluster without a meta leader right now.
func transientSetup(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10008, 10009: // JetStream temporarily unavailable; cluster cannot handle the request
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// EnsureConsumer creates or updates a durable consumer of stream, retrying
// while the cluster is not ready (as EnsureStream). A consumer has its
// stream's replicas.
func (b *Broker) EnsureConsumer(ctx context.Context, stream string, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	err := retrySetup(ctx, func(ctx context.Context) error {
		var err error
		cons, err = b.JS.CreateOrUpdateConsumer(ctx, stream, cc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("order: consumer %s of stream %s: %w", cc.Durable, stream, err)
	}
	return cons, nil
}
