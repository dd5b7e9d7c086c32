package stock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/lua"
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
// and sets each call's result. With DurabilityReplica every pipeline ends
// with WAIT (runReplicated).
func (b *Batcher) runScripts(ctx context.Context, batch []*buyCall) {
	if b.s.dur.replica() {
		b.runReplicated(ctx, batch)
		return
	}
	if len(batch) == 1 {
		c := batch[0]
		v, err := buyScript.Run(ctx, b.s.rdb, c.keys, c.args...).Result()
		c.res, c.err = parseBuy(c.req, v, err)
		return
	}
	// On a cluster go-redis splits the pipeline per node, and each command
	// carries its own reply or error: a node that fails fails only the
	// calls it was sent.
	runPipeline(ctx, b.s.rdb, batch, 0, 0)
}

// runReplicated runs the batch's scripts with WAIT after them, on the
// connection that ran them: on a cluster one pipeline per master,
// concurrently, on that master's client, so a master that fails or moves
// its slots fails only its own calls.
func (b *Batcher) runReplicated(ctx context.Context, batch []*buyCall) {
	n, timeout := b.s.dur.waitArgs()
	cc, ok := b.s.rdb.(*redis.ClusterClient)
	if !ok {
		runPipeline(ctx, b.s.rdb, batch, n, timeout)
		return
	}
	groups := map[*redis.Client][]*buyCall{}
	var order []*redis.Client
	for _, c := range batch {
		m, err := cc.MasterForKey(ctx, c.keys[0])
		if err != nil {
			c.res, c.err = BuyResult{}, fmt.Errorf("stock: buy order %d: %w", c.req.OrderID, err)
			continue
		}
		if _, seen := groups[m]; !seen {
			order = append(order, m)
		}
		groups[m] = append(groups[m], c)
	}
	var wg sync.WaitGroup
	var reload atomic.Bool
	for i, m := range order {
		run := func() {
			if !runPipeline(ctx, m, groups[m], n, timeout) {
				reload.Store(true)
			}
		}
		if i == len(order)-1 {
			run() // the last group in this goroutine
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	if reload.Load() {
		// A slot moved or a master failed: learn the new layout before the
		// next round trip (go-redis would otherwise only on its own calls).
		cc.ReloadState(ctx)
	}
}

// runPipeline runs calls' scripts in one pipeline on c, followed by WAIT
// replicas timeout when replicas > 0, and sets each call's result. Calls
// Redis answered NOSCRIPT (it restarted or failed over and does not know
// the script) run again as EVAL with the script's source, which also
// caches it there, with a WAIT of their own; on a cluster client each goes
// to its own node, so a master that does not answer fails only its calls.
// A script that ran but whose WAIT confirmed fewer than replicas replicas
// (or failed) leaves its call with ErrNotReplicated. runPipeline reports
// false when a call failed for another reason than NOSCRIPT (the caller
// reloads the cluster's layout).
func runPipeline(ctx context.Context, c redis.Cmdable, calls []*buyCall, replicas int, timeout time.Duration) bool {
	healthy := true
	for attempt := 0; len(calls) > 0; attempt++ {
		pipe := c.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, bc := range calls {
			if attempt == 0 {
				cmds[i] = pipe.EvalSha(ctx, buyScript.Hash(), bc.keys, bc.args...)
			} else {
				cmds[i] = pipe.Eval(ctx, lua.Buy, bc.keys, bc.args...)
			}
		}
		var wait *redis.Cmd
		if replicas > 0 {
			wait = pipe.Do(ctx, "WAIT", replicas, max(timeout.Milliseconds(), 1)) // 0 would block forever
		}
		_, _ = pipe.Exec(ctx)
		var again []*buyCall
		for i, bc := range calls {
			v, err := cmds[i].Result()
			if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
				again = append(again, bc)
				continue
			}
			bc.res, bc.err = parseBuy(bc.req, v, err)
			if err != nil {
				healthy = false
			}
			if wait == nil || bc.err != nil {
				continue
			}
			if got, werr := wait.Int64(); werr != nil || got < int64(replicas) {
				if werr != nil {
					healthy = false
				}
				bc.err = fmt.Errorf("%w: order %d: WAIT %d %v answered %d replicas (%v)",
					ErrNotReplicated, bc.res.OrderID, replicas, timeout, got, werr)
			}
		}
		calls = again
	}
	return healthy
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
