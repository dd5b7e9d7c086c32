package main

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/seckill/seckill/stock"
)

// The Redis Cluster of -cluster: three shards, each a master and a replica.
const clusterMasters, clusterReplicas = 3, 1

// semaphoreName is the gateway's buy semaphore (cmd/seckill/roles.go); its
// keys, {sem:buy}, are the one key set every buy of every gateway may use.
const semaphoreName = "buy"

// maxActivityItems is the most items an activity may have (order.maxItems).
const maxActivityItems = 100

// placedItem is an item of a spread activity and the shard its keys are on.
type placedItem struct {
	iid   int64
	shard int
}

// spreadActivity creates and publishes an activity with o.itemsPerShard
// items on every shard, stockN units each, and returns them ordered so
// that consecutive buys go to different shards. Item ids come from
// PostgreSQL, so it creates more items than it needs, reads each one's
// slot (CLUSTER KEYSLOT of its item key) and keeps the first per shard;
// the rest are published but never bought.
func (e *env) spreadActivity(ctx context.Context, o options, stockN int64) (int64, []placedItem, error) {
	shards, k := len(e.topo.shards), o.itemsPerShard
	candidates := k * shards
	if e.topo.cluster {
		candidates = min(4*k*shards, maxActivityItems)
	}
	if k < 1 || k*shards > maxActivityItems {
		return 0, nil, fmt.Errorf("-items-per-shard %d: want 1..%d on %d shards", k, maxActivityItems/shards, shards)
	}
	keys := stock.Keys{Prefix: e.prefix}
	for range 3 {
		aid, iids, err := createActivityItems(e.gwURL, e.admin, candidates, stockN, 1, 900)
		if err != nil {
			return 0, nil, err
		}
		per := make([][]int64, shards)
		for _, iid := range iids {
			s, err := e.topo.shardOf(ctx, keys.Item(aid, iid))
			if err != nil {
				return 0, nil, err
			}
			if len(per[s]) < k {
				per[s] = append(per[s], iid)
			}
		}
		full := true
		for _, p := range per {
			full = full && len(p) == k
		}
		if !full {
			log.Printf("activity %d: its %d items do not give every shard %d; creating another", aid, candidates, k)
			continue
		}
		var items []placedItem
		for j := range k {
			for s := range shards {
				items = append(items, placedItem{iid: per[s][j], shard: s})
			}
		}
		return aid, items, nil
	}
	return 0, nil, fmt.Errorf("3 activities of %d items each left a shard with fewer than %d items", candidates, k)
}

// spreadUsers is how many users one benchSpread round may need.
func spreadUsers(o options) int { return o.rate*int((o.warmup+o.duration)/time.Second) + o.rate }

// buysKey names a shard's units sold in a probe's sample.
func buysKey(i int) string { return "buys/" + strconv.Itoa(i) }

// spreadProbe reads every master's script and WAIT counts and the units
// sold so far of each item, summed per shard (the item hash's stock going
// down is the one count of buys that nothing else adds to).
func (e *env) spreadProbe(ctx context.Context, aid int64, items []placedItem) probe {
	keys := stock.Keys{Prefix: e.prefix}
	return func(out map[string]float64) error {
		if err := e.topo.commandCounts(ctx, out); err != nil {
			return err
		}
		cmds := make([]*redis.StringCmd, len(items))
		if _, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, it := range items {
				cmds[i] = p.HGet(ctx, keys.Item(aid, it.iid), "stock")
			}
			return nil
		}); err != nil {
			return err
		}
		for i, it := range items {
			n, err := cmds[i].Int64()
			if err != nil {
				return fmt.Errorf("stock of item %d: %w", it.iid, err)
			}
			out[buysKey(it.shard)] -= float64(n)
		}
		return nil
	}
}

// benchSpread is one round of the full buy path over the spread activity
// aid, buys rotating over its items, by users firstUser and up (each buys
// once: the item's per-user limit is 1).
func (e *env) benchSpread(ctx context.Context, o options, aid int64, items []placedItem, firstUser int) (caseResult, error) {
	toks, err := e.tokens(firstUser, spreadUsers(o))
	if err != nil {
		return caseResult{}, err
	}
	bodies := make([][]byte, len(items))
	for i, it := range items {
		bodies[i] = []byte(fmt.Sprintf(`{"activity_id":"%d","item_id":"%d","quantity":1}`, aid, it.iid))
	}
	tg := func(i uint64, t *vegeta.Target) {
		t.Method, t.URL, t.Body = "POST", e.gwURL+"/api/v1/seckill", bodies[int(i%uint64(len(bodies)))]
		t.Header = header("Authorization", toks[int(i)%len(toks)], "Content-Type", "application/json")
	}
	log.Printf("full buy path over %d items on %d shards: %d req/s for %v after %v warm-up", len(items),
		len(e.topo.shards), o.rate, o.duration, o.warmup)
	m0, _ := promCounters(e.gwURL+"/metrics", batchMetrics...)
	r, err := attackProbed("buy", o.rate, o.warmup, o.duration, tg, e.watch("gateway", e.gw.pid), e.spreadProbe(ctx, aid, items))
	r.name = "seckill full buy path (202)"
	r.note = e.batchNote(m0)
	if err == nil {
		err = allAccepted(r)
	}
	return r, err
}
