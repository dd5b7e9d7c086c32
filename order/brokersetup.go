package order

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Setting up a stream or a consumer on a JetStream cluster can stall: with
// nats-server 2.15.2, of several processes creating the same R3 stream at
// once, one gets its answer and the others' create or update requests get
// none at all; and a stream just created may answer its info with "not
// found" for a moment. Set-up calls are idempotent, so they are retried
// until setupBudget has passed; an attempt gets minAttempt, doubling up to
// maxAttempt (a slow cluster still gets the time it needs).
const (
	setupBudget = time.Minute
	minAttempt  = 2 * time.Second
	maxAttempt  = 8 * time.Second
)

// errNotReadable is a stream just created or updated whose info is not
// readable yet (a cluster still placing it): the attempt is retried.
var errNotReadable = errors.New("not readable yet")

// retrySetup runs f (one idempotent JetStream set-up call) until it
// succeeds, fails for a reason waiting cannot fix, or setupBudget passes.
func retrySetup(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, setupBudget)
	defer cancel()
	wait, attempt := 250*time.Millisecond, minAttempt
	for {
		actx, acancel := context.WithTimeout(ctx, attempt)
		err := f(actx)
		acancel()
		attempt = min(2*attempt, maxAttempt)
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
// no answer in time, a cluster without a meta leader right now, or a
// placement that failed only because a peer is offline (a cluster starting,
// or one node down: that costs the retries, then the error).
func transientSetup(err error) bool {
	if errors.Is(err, errNotReadable) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10008, 10009: // JetStream temporarily unavailable; cluster cannot handle the request
			return true
		case 10005: // no suitable peers: transient while a node of a starting cluster is not seen yet
			return strings.Contains(apiErr.Description, "peer offline")
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
