package stock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock/lifecycle"
)

// Shards that lost writes.
//
// Redis replication and its append-only file (fsync every second) are
// asynchronous: a master restarted from its file, or a replica promoted in a
// failover, may lack stock deducted by buys already answered 202, and would
// sell it again. Every item hash records who wrote it (warm.lua and
// rebuild.lua): rid, "<run_id>:<master_replid>" of the server, and on a
// cluster nid, the node id. Two checks fence the items whose holder
// changed, per shard, so the items of other shards keep selling:
//
//   - a failover: buy.lua and restock.lua compare nid with CLUSTER MYID on
//     every call (a promoted replica has another node id), so it is caught
//     even on a connection opened while the node was a replica;
//   - a restart keeps the node id but changes the run_id and the replid,
//     and a failover to a replica and back (no restart) keeps the node id
//     and run_id but changes the replid (every promotion does); both are
//     reached through new connections: ShardHook, on every new connection
//     to a master, fences the registered items of the slots that master
//     serves whose rid is not its holder id (fence.lua). CheckShards does
//     the same through the client, periodically, for a change no new
//     connection has seen yet.
//
// A master also takes a new replid when it frees its replication backlog,
// after repl-backlog-ttl (3600s by default) without any replica: its items
// are then fenced and rebuilt although nothing was lost. Set
// repl-backlog-ttl 0 on masters that may lose their replicas for that long.
//
// A fenced item answers NOT_PUBLISHED (the gateway says 503) until recovery
// (order/worker) rebuilds it from PostgreSQL once every accepted order has
// reached it.

// Registry is the set of published items this process guards: the shard
// checks fence only registered items, since listing them from Redis would
// need a key that spans slots. Warm and Rebuild add to it, and the processes
// feed it from PostgreSQL (the gateway's catalog, the worker's live items).
// It is safe for concurrent use; items are never removed (an item whose sale
// ended costs one fence call per check and is never rebuilt).
type Registry struct {
	mu    sync.RWMutex
	items map[ItemRef]struct{}
	list  []ItemRef // a copy of items' keys, rebuilt on change
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{items: map[ItemRef]struct{}{}} }

// Add registers items and returns those that were not registered yet (nil
// if none): the caller fences them (Store.Guard) before it lets buys reach
// them, since connections already checked never saw them.
func (r *Registry) Add(items ...ItemRef) []ItemRef {
	r.mu.RLock()
	missing := false
	for _, it := range items {
		if _, ok := r.items[it]; !ok {
			missing = true
			break
		}
	}
	r.mu.RUnlock()
	if !missing {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var added []ItemRef
	for _, it := range items {
		if _, ok := r.items[it]; !ok {
			r.items[it] = struct{}{}
			added = append(added, it)
		}
	}
	if len(added) > 0 {
		r.rebuildList()
	}
	return added
}

// remove unregisters items: Guard gives back the items it could not fence,
// so the next Guard of them is a first one again.
func (r *Registry) remove(items []ItemRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		delete(r.items, it)
	}
	r.rebuildList()
}

func (r *Registry) rebuildList() {
	list := make([]ItemRef, 0, len(r.items))
	for it := range r.items {
		list = append(list, it)
	}
	r.list = list
}

// Items returns the registered items; the caller must not modify the slice.
func (r *Registry) Items() []ItemRef {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.list
}

// Guard registers items and fences, through the client (so each on the
// master that holds it), those of them registered for the first time whose
// rid is not their server's holder id (fence.lua reads it there). Call it
// before buys can reach the items: the connections this process opened
// before they were registered were checked without them (ShardHook). On an
// error the first-time items are unregistered again, so the next Guard
// retries them; the caller must not expose them. It returns how many items
// it fenced.
func (s *Store) Guard(ctx context.Context, items ...ItemRef) (int, error) {
	added := s.reg.Add(items...)
	if len(added) == 0 {
		return 0, nil
	}
	n, err := fenceItems(ctx, s.rdb, s.keys, added, "", false)
	if n > 0 {
		s.log().Warn("Redis state of newly guarded items may be stale (restart or failover); fenced until rebuilt from PostgreSQL",
			"fenced", n)
	}
	if err != nil {
		s.reg.remove(added)
		return n, err
	}
	return n, nil
}

// CheckShards runs the restart check on every master (on a single Redis, on
// the server): each fences its registered items whose rid is not its
// holder id (run_id and replid). A master whose holder id and the
// registered item count are what
// this store's last full pass on it saw is skipped after its two INFO
// calls. It returns how many items this call fenced, and logs per node; a
// master that cannot be reached is an error, and the others are still
// checked.
func (s *Store) CheckShards(ctx context.Context) (int, error) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		var total atomic.Int64
		var mu sync.Mutex
		var errs []error
		err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			n, err := checkNode(ctx, node, s.reg, s.keys, &s.memo, node.Options().Addr)
			total.Add(int64(n))
			if n > 0 {
				s.log().Warn("Redis shard state may be stale (restart or failover); its items fenced until rebuilt from PostgreSQL",
					"addr", node.Options().Addr, "fenced", n)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", node.Options().Addr, err))
				mu.Unlock()
			}
			return err
		})
		if len(errs) == 0 && err != nil {
			errs = append(errs, err)
		}
		return int(total.Load()), errors.Join(errs...)
	case *redis.Client:
		n, err := checkNode(ctx, c, s.reg, s.keys, &s.memo, c.Options().Addr)
		if n > 0 {
			s.log().Warn("Redis state may be stale (restart); items fenced until rebuilt from PostgreSQL",
				"addr", c.Options().Addr, "fenced", n)
		}
		return n, err
	default:
		return 0, fmt.Errorf("stock: check shards: unsupported client %T", s.rdb)
	}
}

// CheckShardsAtStart runs CheckShards until one pass checks every master,
// retrying with backoff (100ms doubling to 2s): a process must not serve
// before it, since the connections it opened before its items were
// registered were checked without them. It returns how many items it fenced,
// or, once ctx is done, the last error with ctx's.
func (s *Store) CheckShardsAtStart(ctx context.Context) (int, error) {
	fenced := 0
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		n, err := s.CheckShards(ctx)
		fenced += n
		if err == nil {
			return fenced, nil
		}
		s.log().Warn("redis shard check at start failed; retrying", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fenced, fmt.Errorf("stock: shard check at start: %w", errors.Join(err, context.Cause(ctx)))
		case <-t.C:
		}
	}
}

// ShardHook is a go-redis OnConnect hook running the restart check on
// every new connection to a master, on that connection, before any command
// is sent on it: after a restart every connection is new, so no buy reaches
// the restarted server before its items are fenced. It logs per node how
// many items it fenced.
func ShardHook(reg *Registry, keys Keys, log *slog.Logger) func(ctx context.Context, cn *redis.Conn) error {
	return func(ctx context.Context, cn *redis.Conn) error {
		n, err := checkNode(ctx, cn, reg, keys, nil, "")
		if n > 0 {
			log.Warn("Redis node state may be stale (restart); its items fenced until rebuilt from PostgreSQL",
				"node", cn.String(), "fenced", n)
		}
		return err
	}
}

// checkNode fences, on the node c talks to, the registered items of the
// slots it serves whose rid is not its holder id. A replica is left alone:
// scripts cannot write there, and buy.lua catches its promotion.
//
// seen, when not nil, remembers per node address the holder id and the number
// of registered items of its last full pass, and skips the fence calls
// when neither changed: a restart or a promotion changes the holder id, and a failover is
// another node (and buy.lua's nid check). The periodic check then costs
// two INFO per master per pass instead of one script per item.
func checkNode(ctx context.Context, c redis.Cmdable, reg *Registry, keys Keys, seen *nodeMemo, addr string) (int, error) {
	if reg == nil {
		return 0, nil
	}
	pipe := c.Pipeline()
	srv := pipe.Info(ctx, "server")
	repl := pipe.Info(ctx, "replication")
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("stock: redis info: %w", err)
	}
	// The holder id, as warm.lua and rebuild.lua record it: the run_id
	// changes on a restart, the replid on a restart and on every promotion.
	runID := infoField(srv.Val(), "run_id")
	replID := infoField(repl.Val(), "master_replid")
	if runID == "" || replID == "" || infoField(repl.Val(), "role") != "master" {
		seen.forget(addr)
		return 0, nil
	}
	items := reg.Items()
	if len(items) == 0 {
		return 0, nil
	}
	holder := runID + ":" + replID
	if seen.same(addr, holder, len(items)) {
		return 0, nil
	}
	n, err := checkSlots(ctx, c, keys, items, holder, infoField(srv.Val(), "redis_mode") == "cluster")
	if err == nil {
		seen.remember(addr, holder, len(items))
	}
	return n, err
}

// checkSlots fences items (of this node's slots, on a cluster) whose rid
// is not runID.
func checkSlots(ctx context.Context, c redis.Cmdable, keys Keys, items []ItemRef, runID string, isCluster bool) (int, error) {
	if isCluster {
		nodes, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			return 0, fmt.Errorf("stock: cluster nodes: %w", err)
		}
		mine := mySlots(nodes)
		items = slices.DeleteFunc(slices.Clone(items), func(it ItemRef) bool {
			return !mine[Slot(keys.Item(it.ActivityID, it.ItemID))]
		})
		if len(items) == 0 {
			return 0, nil
		}
	}
	return fenceItems(ctx, c, keys, items, runID, true)
}

// nodeMemo is CheckShards' memory of its last full pass per node.
type nodeMemo struct {
	mu    sync.Mutex
	nodes map[string]nodePass
}

type nodePass struct {
	runID string
	items int
}

func (m *nodeMemo) same(addr, runID string, items int) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.nodes[addr]
	return ok && p.runID == runID && p.items == items
}

func (m *nodeMemo) remember(addr, runID string, items int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes == nil {
		m.nodes = map[string]nodePass{}
	}
	m.nodes[addr] = nodePass{runID: runID, items: items}
}

func (m *nodeMemo) forget(addr string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nodes, addr)
}

// fenceItems runs fence.lua for every item, pipelined, loading the script
// once if the server does not know it. runID is the holder id; an empty
// one makes the script read it on the server it runs on (Guard, through a
// cluster client).
//
// On one node (onNode: the hook and the shard checks), a per-item MOVED,
// ASK or TRYAGAIN reply (a slot being resharded, or one that moved since
// the caller read CLUSTER NODES) is not an error: the key is not on this
// node, and the node that holds it refuses to sell it under another node's
// nid (buy.lua) and checks it itself. Through a cluster client (Guard),
// which follows redirections itself, and for any other error, it is.
func fenceItems(ctx context.Context, c redis.Cmdable, keys Keys, items []ItemRef, runID string, onNode bool) (int, error) {
	fenced := 0
	for attempt := 0; ; attempt++ {
		pipe := c.Pipeline()
		cmds := make([]*redis.Cmd, len(items))
		for i, it := range items {
			cmds[i] = pipe.EvalSha(ctx, fenceScript.Hash(), []string{keys.Item(it.ActivityID, it.ItemID)}, runID)
		}
		_, _ = pipe.Exec(ctx)
		// On a cluster client one node may lack the script while the
		// others ran it: only the items it refused run again.
		var noScript []ItemRef
		var errs []error
		for i, cmd := range cmds {
			n, err := cmd.Int64()
			switch {
			case err == nil:
				if n == 1 {
					fenced++
				}
			case onNode && notHere(err):
			case redis.HasErrorPrefix(err, "NOSCRIPT") && attempt == 0:
				noScript = append(noScript, items[i])
			default:
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fenced, fmt.Errorf("stock: fence items: %w", errs[0])
		}
		if len(noScript) == 0 {
			return fenced, nil
		}
		if err := fenceScript.Load(ctx, c).Err(); err != nil {
			return fenced, fmt.Errorf("stock: load fence script: %w", err)
		}
		items = noScript
	}
}

// notHere reports a cluster redirection: the key's slot is served elsewhere
// (MOVED), is being migrated away (ASK), or is mid-migration for a
// multi-key command (TRYAGAIN).
func notHere(err error) bool {
	return redis.HasErrorPrefix(err, "MOVED ") || redis.HasErrorPrefix(err, "ASK ") || redis.HasErrorPrefix(err, "TRYAGAIN")
}

// mySlots reads the slots of the "myself" line of CLUSTER NODES: ranges
// "a-b" and single slots; slots being imported or migrated ("[...]") are
// left out (the owner listed in the ranges still holds them).
func mySlots(nodes string) []bool {
	mine := make([]bool, slotCount)
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.Contains(f[2], "myself") {
			continue
		}
		for _, r := range f[min(8, len(f)):] {
			if strings.HasPrefix(r, "[") {
				continue
			}
			lo, hi, isRange := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := a, error(nil)
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || a < 0 || b >= slotCount {
				continue
			}
			for s := a; s <= b; s++ {
				mine[s] = true
			}
		}
	}
	return mine
}

func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// ShardService runs CheckShards every interval (the gateway's loop; the
// worker's recovery calls CheckShards in its own passes).
func (s *Store) ShardService(log *slog.Logger, every time.Duration) *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "stock.shards", Every: every, Log: log},
		func(ctx context.Context) error {
			_, err := s.CheckShards(ctx)
			return err
		})
}
