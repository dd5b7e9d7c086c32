package stock

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// Batcher coalesces concurrent buy-script calls into pipelined round trips.
// Under a rush, n buys waiting on Redis then cost one write and one read
// instead of n of each, which is most of what a buy costs the gateway and
// Redis. A call that finds a pipeline slot free is sent at once, so a quiet
// gateway adds no latency; calls arriving while every slot is busy ride the
// next batch together. Each call still runs the one atomic script: batching
// changes round trips, never atomicity.
type Batcher struct {
	s     *Store
	calls chan *buyCall
	max   int
	loops int

	mu      sync.RWMutex
	running bool

	stats sync.Mutex
	sent  struct{ batches, calls int64 }
}

// Stats returns how many round trips the batcher sent and how many calls
// they carried (calls/batches is the mean batch size).
func (b *Batcher) Stats() (batches, calls int64) {
	b.stats.Lock()
	defer b.stats.Unlock()
	return b.sent.batches, b.sent.calls
}

type buyCall struct {
	req  BuyRequest
	keys []string
	args []any
	res  BuyResult
	err  error
	done chan struct{}
}

// NewBatcher returns a batcher with `pipelines` round trips in flight at
// most and at most max calls per round trip. Buy calls go straight to Redis
// until Run starts and after it returns.
func NewBatcher(s *Store, pipelines, max int) *Batcher {
	if pipelines < 1 {
		pipelines = 1
	}
	if max < 1 {
		max = 256
	}
	return &Batcher{s: s, calls: make(chan *buyCall), max: max, loops: pipelines}
}

// Run sends batches until ctx is done.
func (b *Batcher) Run(ctx context.Context) error {
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < b.loops; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); b.loop(ctx) }()
	}
	<-ctx.Done()
	b.mu.Lock()
	b.running = false
	b.mu.Unlock()
	wg.Wait()
	return nil
}

// Buy is Store.Buy, sent in a batch. If ctx ends while the call is queued it
// returns ctx's error; once sent, the caller cannot know whether the script
// ran (exactly as with a lost reply), and a reservation it made is persisted
// by the reconciler.
func (b *Batcher) Buy(ctx context.Context, r BuyRequest) (BuyResult, error) {
	b.mu.RLock()
	running := b.running
	b.mu.RUnlock()
	if !running {
		return b.s.Buy(ctx, r)
	}
	keys, args, err := b.s.buyArgs(r)
	if err != nil {
		return BuyResult{}, err
	}
	c := &buyCall{req: r, keys: keys, args: args, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-ctx.Done():
		return BuyResult{}, ctx.Err()
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return BuyResult{}, ctx.Err()
	}
}

func (b *Batcher) loop(ctx context.Context) {
	batch := make([]*buyCall, 0, b.max)
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-b.calls:
			batch = append(batch[:0], c)
		}
	collect:
		for len(batch) < b.max {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break collect
			}
		}
		// A batch in flight finishes even during shutdown: its callers are waiting.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		b.exec(bctx, batch)
		cancel()
	}
}

func (b *Batcher) exec(ctx context.Context, batch []*buyCall) {
	b.stats.Lock()
	b.sent.batches++
	b.sent.calls += int64(len(batch))
	b.stats.Unlock()
	if len(batch) == 1 {
		c := batch[0]
		v, err := buyScript.Run(ctx, b.s.rdb, c.keys, c.args...).Result()
		c.res, c.err = parseBuy(c.req, v, err)
		close(c.done)
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
		close(c.done)
	}
}
