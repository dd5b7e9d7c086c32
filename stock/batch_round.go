package stock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// exec runs one round trip: the batch's scripts in one pipeline, then
// their reservations handed on together, then their callers woken. The
// slot is held throughout, so the next round gathers the buys that arrive
// meanwhile.
func (b *Batcher) exec(ctx context.Context, batch []*buyCall) {
	finished := false
	defer func() {
		if finished {
			return
		}
		// A panic (in the forwarder, say): the callers must not wait
		// forever. Their outcome is unknown, as after a lost reply.
		p := recover()
		for _, c := range batch {
			c.res, c.err = BuyResult{}, fmt.Errorf("stock: buy order %d: round trip failed: %v", c.req.OrderID, p)
			close(c.done)
		}
		panic(p)
	}()
	b.batches.Add(1)
	b.calls.Add(int64(len(batch)))
	b.runScripts(ctx, batch)
	if b.script != nil {
		done := time.Now()
		for _, c := range batch {
			b.script.Observe(done.Sub(c.start).Seconds())
		}
	}
	b.forwardAll(ctx, batch)
	finished = true
	for _, c := range batch {
		close(c.done)
	}
}

// runScripts runs each call's buy script, pipelined when there are several,
// and sets each call's result.
func (b *Batcher) runScripts(ctx context.Context, batch []*buyCall) {
	if len(batch) == 1 {
		c := batch[0]
		v, err := buyScript.Run(ctx, b.s.rdb, c.keys, c.args...).Result()
		c.res, c.err = parseBuy(c.req, v, err)
		return
	}
	pipe := b.s.rdb.Pipeline()
	for _, c := range batch {
		pipe.EvalSha(ctx, buyScript.Hash(), c.keys, c.args...)
	}
	cmds, _ := pipe.Exec(ctx)
	for i, c := range batch {
		var v any
		var err error
		if i < len(cmds) {
			v, err = cmds[i].(interface{ Result() (any, error) }).Result()
		} else {
			err = errors.New("stock: pipeline returned fewer replies than calls")
		}
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// Redis restarted and forgot the script: Run loads it again.
			v, err = buyScript.Run(ctx, b.s.rdb, c.keys, c.args...).Result()
		}
		c.res, c.err = parseBuy(c.req, v, err)
	}
}

// forwardAll hands the batch's reservations to the forwarder in one call:
// new ones, and earlier ones a retried Idempotency-Key found (the order
// stream drops the duplicate). Refused buys hand on nothing.
func (b *Batcher) forwardAll(ctx context.Context, batch []*buyCall) {
	var buf [16]*buyCall
	calls := buf[:0]
	rs := make([]Reservation, 0, len(batch))
	for _, c := range batch {
		if c.err == nil && c.res.ReservationFound {
			rs = append(rs, c.res.Reservation)
			calls = append(calls, c)
		}
	}
	if len(rs) == 0 {
		return
	}
	start := time.Now()
	errs := b.forward.PublishMany(ctx, rs)
	took := time.Since(start)
	for i, c := range calls {
		observe(b.fwd, took)
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = errors.New("forwarder returned fewer errors than reservations")
		}
		if err != nil {
			c.err = fmt.Errorf("%w: order %d: %w", ErrNotForwarded, c.res.OrderID, err)
		}
	}
}

func observe(o Observer, d time.Duration) {
	if o != nil {
		o.Observe(d.Seconds())
	}
}
