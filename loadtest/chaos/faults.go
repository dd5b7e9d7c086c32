package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/loadtest/scenario"
)

// faultKind is one of the faults; each topology injects its own sequence
// one after another.
type faultKind int

const (
	faultGateway faultKind = iota // kill -9 gateway-1, start it again
	faultWorker                   // kill -9 worker-1, start it again
	faultNATS                     // stop nats-server, start it on the same store
	faultRedis                    // kill -9 redis-server, start it on the same AOF
	faultPG                       // pg_ctl stop -m fast, start again

	// The cluster topology's own (clusterfaults.go).
	faultRedisKill   // kill -9 the master of the load item's shard; its replica takes over
	faultRedisRejoin // start that old master again; it rejoins as a replica
	faultRedisPause  // SIGSTOP the shard's master past cluster-node-timeout, SIGCONT after the failover
	faultNATSNode    // kill -9 the NATS node leading the orders stream, start it again
)

// singleFaultKinds is the single topology's sequence, clusterFaultKinds the
// cluster's; PostgreSQL comes last in both (the load's length counts on it).
var (
	singleFaultKinds  = []faultKind{faultGateway, faultWorker, faultNATS, faultRedis, faultPG}
	clusterFaultKinds = []faultKind{faultRedisKill, faultRedisRejoin, faultRedisPause, faultNATSNode,
		faultGateway, faultWorker, faultPG}
)

// String names the fault as the table does.
func (k faultKind) String() string {
	return [...]string{"kill -9 gateway-1", "kill -9 worker-1", "restart NATS", "kill -9 Redis", "stop PostgreSQL",
		"kill -9 Redis master", "restart old master", "pause Redis master", "kill -9 NATS leader"}[k]
}

// redisShard reports whether k fails over the load item's Redis shard (its
// probe item is put on that shard, and recovery counts the load's buys).
func (k faultKind) redisShard() bool {
	return k == faultRedisKill || k == faultRedisRejoin || k == faultRedisPause
}

// fault is one injected fault and what the run saw of it while it happened.
type fault struct {
	kind faultKind
	name string
	due  time.Time // planned
	at   time.Time // injected
	back time.Time // the part was running (ready) again
	err  error     // the fault could not be injected or undone
	note string

	// Redis only.
	failover   time.Duration // cluster: from the fault until another node served the shard
	cut        aofCut
	stale      *snapshot // the first read of the restarted server
	fencedAt   time.Time // first seen fenced (the load's item)
	unfencedAt time.Time // first seen rebuilt after that
}

func (f *fault) failf(format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf(format, args...)
	}
}

// timersDownAt tells whether an order expiring at t expired while a part its
// payment timer needs was down, and from when it can be expected to be
// cancelled within one sweep: its expiry, as the other worker's sweeper runs
// without the killed worker and without NATS; for PostgreSQL, the return.
func (cr *chaosRun) timersDownAt(t time.Time) (time.Time, bool) {
	for _, f := range cr.faults {
		if f.at.IsZero() || f.kind == faultGateway || f.kind == faultRedis || f.kind.redisShard() {
			continue
		}
		back := f.back
		if back.IsZero() {
			back = f.at.Add(cr.cfg.Gap)
		}
		if t.Before(f.at.Add(-time.Second)) || t.After(back.Add(time.Second)) {
			continue
		}
		if f.kind == faultPG {
			return scenario.MaxTime(t, back), true
		}
		return t, true
	}
	return time.Time{}, false
}

// schedule runs the fault sequence from t0: for each fault its sell-out
// probe starts early enough to sell out just before the fault, a checkpoint
// reads Redis just before it, then the fault is injected and undone. It
// returns when the last part is back.
func (cr *chaosRun) schedule(ctx context.Context, t0 time.Time) {
	for i, k := range cr.cfg.kinds() {
		f := &fault{kind: k, name: k.String(), due: t0.Add(cr.cfg.faultAt(i))}
		cr.faults = append(cr.faults, f)
		p := cr.probes[i]
		if sleepCtx(ctx, time.Until(f.due.Add(-cr.probeLead()))) != nil {
			return
		}
		cr.wg.Add(1)
		go func() { defer cr.wg.Done(); p.run(ctx, cr, f.due.Add(cr.probeHold(k))) }()
		if sleepCtx(ctx, time.Until(f.due.Add(-700*time.Millisecond))) != nil {
			return
		}
		cr.snaps = append(cr.snaps, cr.checkpoint(ctx, fmt.Sprintf("before fault %d", i+1), 5*time.Second))
		if sleepCtx(ctx, time.Until(f.due)) != nil {
			return
		}
		switch k {
		case faultGateway:
			cr.killRestart(ctx, f, cr.cl.gateways[0])
		case faultWorker:
			cr.killRestart(ctx, f, cr.cl.workers[0])
		case faultNATS:
			cr.restartNATS(ctx, f)
		case faultRedis:
			cr.restartRedis(ctx, f)
		case faultPG:
			cr.restartPG(ctx, f)
		case faultRedisKill:
			cr.killMaster(ctx, f)
		case faultRedisRejoin:
			cr.rejoinMaster(ctx, f)
		case faultRedisPause:
			cr.pauseMaster(ctx, f)
		case faultNATSNode:
			cr.killNATSLeader(ctx, f)
		}
		if f.err != nil {
			cr.logf("%s: %v", f.name, f.err)
		}
	}
}

// killRestart is kill -9 of a seckill process and a start after RestartAfter.
func (cr *chaosRun) killRestart(ctx context.Context, f *fault, p *cluster.Seckill) {
	pid := p.PID()
	f.at = time.Now()
	if err := p.Kill(); err != nil {
		f.failf("kill: %v", err)
	}
	cr.logf("%s (pid %d); start again in %v", f.name, pid, cr.cfg.RestartAfter)
	if sleepCtx(ctx, cr.cfg.RestartAfter) != nil {
		return
	}
	if err := p.Start(); err != nil {
		f.failf("restart: %v", err)
		return
	}
	if err := p.WaitReady(ctx, 60*time.Second); err != nil {
		f.failf("%v", err)
		return
	}
	f.back = time.Now()
	f.note = fmt.Sprintf("pid %d → %d", pid, p.PID())
	cr.logf("%s ready again (%s)", p.Name, f.note)
}

// restartNATS stops nats-server cleanly and starts it on the same store.
func (cr *chaosRun) restartNATS(ctx context.Context, f *fault) {
	f.at = time.Now()
	if err := cr.cl.nats.Stop(10 * time.Second); err != nil {
		f.failf("stop: %v", err)
	}
	cr.logf("%s: stopped in %v; start again in %v", f.name, time.Since(f.at).Round(time.Millisecond), cr.cfg.NATSDown)
	if sleepCtx(ctx, cr.cfg.NATSDown) != nil {
		return
	}
	if err := cr.cl.nats.Start(); err != nil {
		f.failf("start: %v", err)
		return
	}
	if !cluster.WaitUntil(ctx, 30*time.Second, func(context.Context) bool { return cluster.TCPOpen(cr.cl.nats.Addr()) }) {
		f.failf("not listening within 30s")
		return
	}
	f.back = time.Now()
	cr.logf("NATS listening again")
}

// restartRedis kills redis-server, drops the AOF's last RedisLose of writes
// (what a host crash loses with appendfsync everysec), starts it on the same
// folder, then watches the load's item: the restarted state read at once,
// when it is fenced, and when the rebuild lifts the fence.
func (cr *chaosRun) restartRedis(ctx context.Context, f *fault) {
	f.at = time.Now()
	if err := cr.cl.redis.Kill(); err != nil {
		f.failf("kill: %v", err)
	}
	cut, err := cr.cl.redis.dropTail(f.at, cr.cfg.RedisLose)
	if err != nil {
		f.failf("drop AOF tail: %v", err)
	}
	f.cut = cut
	cr.logf("%s; AOF cut by %d bytes (writes of the last %v); start again", f.name, cut.bytes, cut.window.Round(time.Millisecond))
	if err := cr.cl.redis.Start(); err != nil {
		f.failf("start: %v", err)
		return
	}
	if !cluster.WaitUntil(ctx, 30*time.Second, cr.cl.redis.Ready) {
		f.failf("no PONG within 30s")
		return
	}
	f.back = time.Now()
	s := cr.checkpoint(ctx, "Redis just restarted", 0)
	f.stale = s
	main := s.item(cr.r.Act.ItemID)
	if main != nil && main.fenced {
		f.fencedAt = s.at
	}
	cr.logf("Redis answering again after %v (loaded the AOF)", f.back.Sub(f.at).Round(time.Millisecond))
	// Watch the fence on the side, so the schedule goes on meanwhile.
	cr.wg.Add(1)
	go func() { defer cr.wg.Done(); cr.watchFence(ctx, f) }()
}

// watchFence polls the load's item after the Redis restart (or, on a
// cluster, the failover) until the fence is lifted (20 s at most): when it
// was first seen fenced and when rebuilt.
func (cr *chaosRun) watchFence(ctx context.Context, f *fault) {
	cluster.WaitUntil(ctx, 20*time.Second, func(ctx context.Context) bool {
		fenced, ok := cr.fenced(ctx, cr.r.Act)
		switch {
		case !ok:
		case fenced && f.fencedAt.IsZero():
			f.fencedAt = time.Now()
		case !fenced && !f.fencedAt.IsZero():
			f.unfencedAt = time.Now()
			return true
		case !fenced && time.Since(f.back) > 3*time.Second:
			return true // never fenced: the mechanism is missing, or it was lifted between polls
		}
		return false
	})
	what := "restart"
	if f.kind != faultRedis {
		what = "failover"
	}
	switch {
	case !f.unfencedAt.IsZero():
		cr.logf("items fenced %v after the %s, rebuilt %v after it",
			f.fencedAt.Sub(f.back).Round(time.Millisecond), what, f.unfencedAt.Sub(f.back).Round(time.Millisecond))
	case f.fencedAt.IsZero():
		cr.logf("the load's item was never seen fenced after the %s", what)
	default:
		cr.logf("the load's item was still fenced 20s after the %s", what)
	}
}

// restartPG stops PostgreSQL (fast: clients are disconnected) and starts it
// after PGDown.
func (cr *chaosRun) restartPG(ctx context.Context, f *fault) {
	f.at = time.Now()
	if err := cr.cl.pg.Stop(ctx, "fast"); err != nil {
		f.failf("stop: %v", err)
	}
	cr.logf("%s (pg_ctl stop -m fast took %v); start again in %v", f.name, time.Since(f.at).Round(time.Millisecond), cr.cfg.PGDown)
	if sleepCtx(ctx, cr.cfg.PGDown) != nil {
		return
	}
	if err := cr.cl.pg.Start(context.WithoutCancel(ctx)); err != nil {
		f.failf("start: %v", err)
		return
	}
	f.back = time.Now()
	cr.logf("PostgreSQL accepting connections again")
}
