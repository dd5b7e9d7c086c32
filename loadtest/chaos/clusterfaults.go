package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/loadtest/scenario"
	"github.com/seckill/seckill/stock"
)

// The cluster topology's faults. The Redis ones all hit the shard that holds
// the load's item (its probes were published until their items landed
// there too): which node is its master is asked of the cluster at fault
// time, never assumed.

// ordersStream is seckill's default orders stream, whose leader the NATS
// fault kills.
const ordersStream = "SECKILL_ORDERS"

// clusterState is what the cluster faults remember between them.
type clusterState struct {
	mu        sync.Mutex
	slot      int64          // the load item's hash slot
	oldMaster *cluster.Redis // killed by faultRedisKill, started by faultRedisRejoin
	paused    *cluster.Redis // frozen now: asking it would hang
}

// nodeLine is one line of CLUSTER NODES.
type nodeLine struct {
	id, masterID string
	port         int
	flags        string
	slots        [][2]int64
}

func (l nodeLine) master() bool { return strings.Contains(l.flags, "master") }
func (l nodeLine) failed() bool { return strings.Contains(l.flags, "fail") }
func (l nodeLine) owns(slot int64) bool {
	for _, r := range l.slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// parseNodes reads a CLUSTER NODES reply.
func parseNodes(out string) []nodeLine {
	var lines []nodeLine
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(s)
		if len(f) < 8 {
			continue
		}
		l := nodeLine{id: f[0], flags: f[2], masterID: f[3]}
		hostport, _, _ := strings.Cut(f[1], "@")
		if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
			l.port, _ = strconv.Atoi(hostport[i+1:])
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			lo, hi, isRange := strings.Cut(r, "-")
			a, _ := strconv.ParseInt(lo, 10, 64)
			b := a
			if isRange {
				b, _ = strconv.ParseInt(hi, 10, 64)
			}
			l.slots = append(l.slots, [2]int64{a, b})
		}
		lines = append(lines, l)
	}
	return lines
}

// clusterNodes asks node n for its CLUSTER NODES (short timeouts).
func clusterNodes(ctx context.Context, n *cluster.Redis) ([]nodeLine, error) {
	cl := n.Client()
	defer cl.Close()
	out, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	return parseNodes(out), nil
}

// nodeByPort is the harness's node listening on port.
func (cr *chaosRun) nodeByPort(port int) *cluster.Redis {
	for _, n := range cr.cl.redisCluster.Nodes {
		if n.Port == port {
			return n
		}
	}
	return nil
}

// shardOf is the id of the master serving activity a's item ("" on a single
// Redis). It also records the load item's slot on the first call.
func (cr *chaosRun) shardOf(ctx context.Context, a scenario.Activity) (string, error) {
	if cr.cl.redisCluster == nil {
		return "", nil
	}
	keys := stock.Keys{Prefix: cr.cfg.Load.RedisPrefix}
	slot, err := cr.rdb.ClusterKeySlot(ctx, keys.Item(a.ID, a.ItemID)).Result()
	if err != nil {
		return "", fmt.Errorf("cluster keyslot: %w", err)
	}
	if a.ID == cr.r.Act.ID {
		cr.cs.slot = slot
	}
	m, _, err := cr.slotNodes(ctx, slot)
	if err != nil {
		return "", err
	}
	nodes, err := clusterNodes(ctx, m)
	if err != nil {
		return "", err
	}
	for _, l := range nodes {
		if strings.Contains(l.flags, "myself") {
			return l.id, nil
		}
	}
	return "", errors.New("cluster nodes: no myself line")
}

// slotNodes asks the running, unpaused nodes which node is the healthy
// master serving slot and which is its replica (nil if it has none).
func (cr *chaosRun) slotNodes(ctx context.Context, slot int64) (master, replica *cluster.Redis, err error) {
	cr.cs.mu.Lock()
	paused := cr.cs.paused
	cr.cs.mu.Unlock()
	err = errors.New("no node answered CLUSTER NODES")
	for _, n := range cr.cl.redisCluster.Nodes {
		if !n.Running() || n == paused {
			continue
		}
		var lines []nodeLine
		if lines, err = clusterNodes(ctx, n); err != nil {
			continue
		}
		var m *nodeLine
		for i, l := range lines {
			if l.master() && !l.failed() && l.owns(slot) {
				m = &lines[i]
			}
		}
		if m == nil {
			err = fmt.Errorf("%s: no healthy master serves slot %d", n.Addr, slot)
			continue
		}
		master = cr.nodeByPort(m.port)
		for _, l := range lines {
			if l.masterID == m.id && !l.failed() {
				replica = cr.nodeByPort(l.port)
			}
		}
		if master == nil {
			return nil, nil, fmt.Errorf("slot %d: master on port %d is not one of the run's nodes", slot, m.port)
		}
		return master, replica, nil
	}
	return nil, nil, err
}

// servesSlot reports whether n is a master serving slot in a cluster it
// sees as ok: the failover to n is over.
func servesSlot(ctx context.Context, n *cluster.Redis, slot int64) bool {
	cl := n.Client()
	defer cl.Close()
	info, err := cl.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(info, "cluster_state:ok") {
		return false
	}
	lines, err := clusterNodes(ctx, n)
	if err != nil {
		return false
	}
	for _, l := range lines {
		if strings.Contains(l.flags, "myself") {
			return l.master() && l.owns(slot)
		}
	}
	return false
}

// replicaLinked reports whether n is a replica whose link to its master is up.
func replicaLinked(ctx context.Context, n *cluster.Redis) (bool, string) {
	cl := n.Client()
	defer cl.Close()
	repl, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		return false, ""
	}
	field := func(name string) string {
		for _, line := range strings.Split(repl, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
				return v
			}
		}
		return ""
	}
	master := field("master_host") + ":" + field("master_port")
	return field("role") == "slave" && field("master_link_status") == "up", master
}

// shardToFail returns the master of the load item's shard and the replica
// that is to take over from it.
func (cr *chaosRun) shardToFail(ctx context.Context) (m, repl *cluster.Redis, err error) {
	m, repl, err = cr.slotNodes(ctx, cr.cs.slot)
	if err == nil && repl == nil {
		err = errors.New("the shard's master has no replica")
	}
	return m, repl, err
}

// killMaster kills -9 the master of the load item's shard and waits until
// its replica serves the shard: that wait is the failover time.
func (cr *chaosRun) killMaster(ctx context.Context, f *fault) {
	m, repl, err := cr.shardToFail(ctx)
	if err != nil {
		f.failf("find the shard's master: %v", err)
		return
	}
	f.at = time.Now()
	if err := m.Kill(); err != nil {
		f.failf("kill: %v", err)
	}
	cr.cs.mu.Lock()
	cr.cs.oldMaster = m
	cr.cs.mu.Unlock()
	cr.logf("%s %s (slot %d); waiting for replica %s to take over", f.name, m.Addr, cr.cs.slot, repl.Addr)
	if !cluster.WaitUntil(ctx, 30*time.Second, func(ctx context.Context) bool { return servesSlot(ctx, repl, cr.cs.slot) }) {
		f.failf("replica %s did not take over within 30s", repl.Addr)
		return
	}
	f.back = time.Now()
	f.failover = f.back.Sub(f.at)
	f.note = fmt.Sprintf("master %s killed, replica %s promoted after %v", m.Addr, repl.Addr, f.failover.Round(time.Millisecond))
	cr.logf("%s", f.note)
	cr.wg.Add(1)
	go func() { defer cr.wg.Done(); cr.watchFence(ctx, f) }()
}

// rejoinMaster starts the master killed by killMaster on its old folder and
// waits until it is a replica whose link to the new master is up.
func (cr *chaosRun) rejoinMaster(ctx context.Context, f *fault) {
	cr.cs.mu.Lock()
	n := cr.cs.oldMaster
	cr.cs.mu.Unlock()
	if n == nil {
		f.failf("no killed master to restart")
		return
	}
	f.at = time.Now()
	if err := n.Start(); err != nil {
		f.failf("start: %v", err)
		return
	}
	var master string
	if !cluster.WaitUntil(ctx, 60*time.Second, func(ctx context.Context) bool {
		var ok bool
		ok, master = replicaLinked(ctx, n)
		return ok
	}) {
		f.failf("%s not a linked replica within 60s", n.Addr)
		return
	}
	f.back = time.Now()
	f.note = fmt.Sprintf("%s rejoined as a replica of %s, master_link_status:up after %v", n.Addr, master,
		f.back.Sub(f.at).Round(time.Millisecond))
	cr.logf("%s", f.note)
}

// pauseMaster freezes (SIGSTOP) the master of the load item's shard until
// the cluster has failed it over to its replica (longer than the node
// timeout), then resumes it: it comes back believing it is the master, and
// must learn otherwise before any write it takes counts. It waits until the
// resumed node is a linked replica.
func (cr *chaosRun) pauseMaster(ctx context.Context, f *fault) {
	m, repl, err := cr.shardToFail(ctx)
	if err != nil {
		f.failf("find the shard's master: %v", err)
		return
	}
	f.at = time.Now()
	if err := m.Pause(); err != nil {
		f.failf("pause: %v", err)
		return
	}
	cr.cs.mu.Lock()
	cr.cs.paused = m
	cr.cs.mu.Unlock()
	cr.logf("%s %s (SIGSTOP); waiting for replica %s to take over", f.name, m.Addr, repl.Addr)
	tookOver := cluster.WaitUntil(ctx, 30*time.Second, func(ctx context.Context) bool { return servesSlot(ctx, repl, cr.cs.slot) })
	resumed := time.Now()
	if err := m.Resume(); err != nil {
		f.failf("resume: %v", err)
	}
	cr.cs.mu.Lock()
	cr.cs.paused = nil
	cr.cs.mu.Unlock()
	if !tookOver {
		f.failf("replica %s did not take over within 30s (the master was resumed then)", repl.Addr)
		return
	}
	f.back = resumed
	f.failover = resumed.Sub(f.at)
	cr.logf("replica %s promoted after %v; %s resumed (SIGCONT)", repl.Addr, f.failover.Round(time.Millisecond), m.Addr)
	cr.wg.Add(1)
	go func() { defer cr.wg.Done(); cr.watchFence(ctx, f) }()
	if !cluster.WaitUntil(ctx, 60*time.Second, func(ctx context.Context) bool { ok, _ := replicaLinked(ctx, m); return ok }) {
		f.failf("%s not a linked replica within 60s of its resume", m.Addr)
		return
	}
	f.note = fmt.Sprintf("master %s frozen, replica %s promoted after %v; resumed, a linked replica %v later",
		m.Addr, repl.Addr, f.failover.Round(time.Millisecond), time.Since(resumed).Round(time.Millisecond))
	cr.logf("%s", f.note)
}

// streamLeader is the name of the NATS node leading the orders stream.
func (cr *chaosRun) streamLeader(ctx context.Context) (string, error) {
	nc, err := nats.Connect(cr.cl.natsURL(), nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, ordersStream)
	if err != nil {
		return "", err
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", ordersStream)
	}
	return info.Cluster.Leader, nil
}

// killNATSLeader kills -9 the NATS node leading the orders stream (any node
// if the leader cannot be told) and starts it again after NATSDown.
func (cr *chaosRun) killNATSLeader(ctx context.Context, f *fault) {
	nodes := cr.cl.natsCluster.Nodes
	victim, how := nodes[0], "the first node (the leader could not be asked)"
	leader, err := cr.streamLeader(ctx)
	for _, n := range nodes {
		if err == nil && n.Name == leader {
			victim, how = n, "the "+ordersStream+" leader"
		}
	}
	if err != nil {
		cr.logf("%s: stream leader: %v", f.name, err)
	}
	f.at = time.Now()
	if err := victim.Kill(); err != nil {
		f.failf("kill: %v", err)
	}
	cr.logf("%s %s, %s; start again in %v", f.name, victim.Name, how, cr.cfg.NATSDown)
	if sleepCtx(ctx, cr.cfg.NATSDown) != nil {
		return
	}
	if err := victim.Restart(ctx); err != nil {
		f.failf("restart: %v", err)
		return
	}
	f.back = time.Now()
	var after string
	cluster.WaitUntil(ctx, 10*time.Second, func(ctx context.Context) bool {
		l, err := cr.streamLeader(ctx)
		after = l
		return err == nil
	})
	if after == "" {
		after = "no node"
	}
	f.note = fmt.Sprintf("%s killed (%s); %s leads it now", victim.Name, how, after)
	cr.logf("%s ready again; %s", victim.Name, f.note)
}

// clusterParagraph sums up the Redis failovers with the run's numbers.
func (ev *chaosEval) clusterParagraph() string {
	cr := ev.cr
	var b strings.Builder
	b.WriteString("Redis failovers.")
	for i, ff := range ev.figures {
		f := ff.f
		if f.kind != faultRedisKill && f.kind != faultRedisPause {
			continue
		}
		fmt.Fprintf(&b, " Fault %d (%s): ", i+1, f.name)
		if f.failover == 0 {
			b.WriteString("no failover seen.")
			continue
		}
		fmt.Fprintf(&b, "the replica served the shard %.2fs after the fault", f.failover.Seconds())
		switch {
		case !f.unfencedAt.IsZero():
			fmt.Fprintf(&b, ", the load's item was fenced and rebuilt %.2fs after that", f.unfencedAt.Sub(f.back).Seconds())
		case !f.fencedAt.IsZero():
			b.WriteString(", the load's item was fenced and still fenced 20 s later")
		default:
			b.WriteString(", the load's item was never seen fenced")
		}
		fmt.Fprintf(&b, "; the first load 202 came %.2fs after the fault (%d answers 503 and %d other between).",
			ff.recovery.Seconds(), ff.after503, ff.afterOther)
	}
	var loadLost int
	for _, o := range ev.lostLua {
		if o.aid == cr.r.Act.ID {
			loadLost++
		}
	}
	fmt.Fprintf(&b, " Orders whose buy's Redis writes (Idempotency-Key) the cluster no longer has: %d (%d of the load); "+
		"each is a row, so no 202 was lost, but a resend of such a buy is not recognised.", len(ev.lostLua), loadLost)
	return b.String()
}

// goRedisLog takes go-redis's own log lines (a failed dial per command while
// a master is down, many per second during a failover) off stderr and into
// <out>/go-redis.log for the length of a cluster run.
var goRedisLog = &redisLogSink{w: io.Discard}

type redisLogSink struct {
	once sync.Once
	mu   sync.Mutex
	w    io.Writer
}

func (s *redisLogSink) Printf(_ context.Context, format string, v ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, time.Now().Format("15:04:05.000 ")+format+"\n", v...)
}

// to sends go-redis's log to w (io.Discard when the run is over).
func (s *redisLogSink) to(w io.Writer) {
	s.once.Do(func() { redis.SetLogger(s) })
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}
