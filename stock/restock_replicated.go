package stock

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/lua"
)

// restockCall is one order's return under DurabilityReplica, and its outcome.
type restockCall struct {
	req RestockRequest
	res RestockResult
	err error
}

// restockReplicated runs the calls' restock scripts with WAIT after them on
// the connection that ran them, as the buy path does (runReplicated): on a
// cluster one pipeline per master, concurrently, so a master that fails
// fails only its own calls.
func (s *Store) restockReplicated(ctx context.Context, calls []*restockCall) {
	n, timeout := s.dur.waitArgs()
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		s.restockPipeline(ctx, s.rdb, calls, n, timeout)
		return
	}
	groups := map[*redis.Client][]*restockCall{}
	var masters []*redis.Client
	for _, c := range calls {
		m, err := cc.MasterForKey(ctx, s.keys.Item(c.req.ActivityID, c.req.ItemID))
		if err != nil {
			c.err = fmt.Errorf("stock: restock order %d: %w", c.req.OrderID, err)
			continue
		}
		if _, seen := groups[m]; !seen {
			masters = append(masters, m)
		}
		groups[m] = append(groups[m], c)
	}
	var wg sync.WaitGroup
	var reload atomic.Bool
	for _, m := range masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !s.restockPipeline(ctx, m, groups[m], n, timeout) {
				reload.Store(true)
			}
		}()
	}
	wg.Wait()
	if reload.Load() {
		cc.ReloadState(ctx)
	}
}

// restockPipeline runs calls' restock scripts in one pipeline on c followed
// by WAIT replicas timeout, and sets each call's outcome: a return whose
// WAIT confirmed fewer than replicas replicas (or failed) is
// ErrNotReplicated. Calls Redis answered NOSCRIPT run again as EVAL, with a
// WAIT of their own. It reports false when a call failed for another
// reason than NOSCRIPT (the caller reloads the cluster's layout).
func (s *Store) restockPipeline(ctx context.Context, c redis.Cmdable, calls []*restockCall, replicas int, timeout time.Duration) bool {
	healthy := true
	for attempt := 0; len(calls) > 0; attempt++ {
		pipe := c.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, rc := range calls {
			if attempt == 0 {
				cmds[i] = pipe.EvalSha(ctx, restockScript.Hash(), s.restockKeys(rc.req), restockArgs(rc.req)...)
			} else {
				cmds[i] = pipe.Eval(ctx, lua.Restock, s.restockKeys(rc.req), restockArgs(rc.req)...)
			}
		}
		wait := pipe.Do(ctx, "WAIT", replicas, max(timeout.Milliseconds(), 1)) // 0 would block forever
		_, _ = pipe.Exec(ctx)
		var again []*restockCall
		for i, rc := range calls {
			v, err := cmds[i].Result()
			if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
				again = append(again, rc)
				continue
			}
			rc.res, rc.err = parseRestock(strconv.FormatInt(rc.req.OrderID, 10), v, err)
			if err != nil {
				healthy = false
			}
			if rc.err != nil {
				continue
			}
			if got, werr := wait.Int64(); werr != nil || got < int64(replicas) {
				if werr != nil {
					healthy = false
				}
				rc.res, rc.err = RestockResult{}, fmt.Errorf("%w: restock order %d: WAIT %d %v answered %d replicas (%v)",
					ErrNotReplicated, rc.req.OrderID, replicas, timeout, got, werr)
			}
		}
		calls = again
	}
	return healthy
}
