package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchReader reads a pull consumer in batches without the latency of a
// fixed-size fetch: it blocks (up to wait) for the first message, then takes
// whatever else arrives within linger, up to max. A lone timer message is
// handled at once; a backlog is handled in full batches.
type batchReader struct {
	cons   jetstream.Consumer
	max    int
	wait   time.Duration
	linger time.Duration

	mu   sync.Mutex
	iter jetstream.MessagesContext
}

func newBatchReader(cons jetstream.Consumer, max int, wait, linger time.Duration) *batchReader {
	return &batchReader{cons: cons, max: max, wait: wait, linger: linger}
}

// next returns the next batch; an empty batch means nothing arrived in wait.
func (r *batchReader) next(ctx context.Context) ([]jetstream.Msg, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.iter == nil {
		it, err := r.cons.Messages(jetstream.PullMaxMessages(2 * r.max))
		if err != nil {
			return nil, err
		}
		r.iter = it
	}
	first, err := r.iter.Next(jetstream.NextMaxWait(r.wait))
	if err != nil {
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return nil, nil
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			r.iter = nil // the connection was lost; start a new iterator next time
		}
		return nil, err
	}
	batch := append(make([]jetstream.Msg, 0, r.max), first)
	deadline := time.Now().Add(r.linger)
	for len(batch) < r.max && ctx.Err() == nil {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		m, err := r.iter.Next(jetstream.NextMaxWait(left))
		if err != nil {
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// close stops pulling and hands prefetched, unprocessed messages back at
// once (NAK), so another worker takes them now rather than after AckWait.
func (r *batchReader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.iter == nil {
		return
	}
	r.iter.Drain()
	for {
		m, err := r.iter.Next(jetstream.NextMaxWait(50 * time.Millisecond))
		if err != nil {
			break
		}
		_ = m.Nak()
	}
	r.iter.Stop()
	r.iter = nil
}
