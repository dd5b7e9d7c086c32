package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/lifecycle"
)

// TestNATSClusterNodeLoss runs the worker on a 3-node JetStream cluster with
// nats.replicas = 3. The streams come up with three replicas (read back) and
// schedules on the replicated timeout stream fire on time. Then, during a
// rush of publishes (PublishMany, as the gateway), kill -9 the node that
// leads the order stream, the timeout stream and both consumers, and that
// the client is connected to:
//
//   - every publish that got its ack is exactly one row, and every other
//     reservation too once the reconciler ran (nothing sold twice or lost);
//   - the timers armed before the kill fire on the new leader, never early;
//   - publishes are acked again within 30 s of the kill (the time is logged).
func TestNATSClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	nc := cluster.NewNATSCluster(t, 3)
	b := ordertest.NewReplicatedBroker(t, nc.URLs(), 3)
	f := setup(t, opts{broker: b})
	ctx := f.ctx
	tm := f.w.Timeouts()
	if !tm.Scheduled() {
		t.Fatal("the R3 timeout stream came back without message schedules")
	}
	streams := []string{b.Config().Stream, b.Config().Stream + "_TIMEOUTS"}
	for _, name := range streams {
		info := streamInfo(t, b, name)
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %d replicas configured, cluster %+v; want 3 (a leader and 2 peers)", name, info.Config.Replicas, info.Cluster)
		}
	}

	// Schedules on the R3 stream fire on time (never early, each once).
	checkTimeouts(t, f, 30, false)

	// Move every leader to the node this client is connected to, so one
	// kill takes the connection, both streams and both consumers at once.
	victim := b.NC.ConnectedServerName()
	moveLeaders(t, b, victim)
	var killed *cluster.NATS
	for i, n := range nc.Nodes {
		if fmt.Sprintf("nats-%d", i+1) == victim {
			killed = n
		}
	}
	if killed == nil {
		t.Fatalf("connected to %q, not a node of the cluster", victim)
	}
	if l := streamInfo(t, b, streams[0]).Cluster.Leader; l != victim {
		t.Fatalf("order stream led by %s, want %s", l, victim)
	}

	// The persister and the timers run through the fault.
	for _, s := range []*lifecycle.Service{f.w.Persister(0).Service(), tm.Service()} {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.StopAndCancel)
	}
	var mu sync.Mutex
	cancelledBy := map[int64]int{}
	tm.OnCancelled = func(o order.Order, _ time.Time) {
		mu.Lock()
		defer mu.Unlock()
		cancelledBy[o.ID]++
	}

	const units = 6000
	payTimeout := 15 * time.Second
	aid, iid := f.publish(t, units, payTimeout)
	var users atomic.Int64

	// Before the kill: orders persisted and their timers armed.
	before := newRush(f, aid, iid, &users)
	before.start(ctx, 8)
	cluster.Eventually(t, 20*time.Second, func() bool { return before.acked() >= 300 })
	before.stop(t)
	res := before.results()
	var armed []int64
	for _, p := range res {
		if p.err != nil {
			t.Fatalf("publish before the kill: %v", p.err)
		}
		armed = append(armed, p.id)
	}
	cluster.Eventually(t, 20*time.Second, func() error { return f.rowsExist(armed) })
	cluster.Eventually(t, 20*time.Second, func() error { return timersArmed(f, b, armed) })

	// The kill, in the middle of a rush.
	rush := newRush(f, aid, iid, &users)
	rush.start(ctx, 8)
	cluster.Eventually(t, 20*time.Second, func() bool { return rush.acked() >= 200 })
	killAt := time.Now()
	if err := killed.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s (leader of both streams and consumers, the client's server) after %d acked publishes",
		victim, rush.acked())
	var firstAck time.Duration
	cluster.Eventually(t, 30*time.Second, func() error {
		d, ok := rush.firstAckAfter(killAt)
		if !ok {
			return errors.New("no publish started after the kill was acked")
		}
		firstAck = d
		return nil
	})
	after := rush.acked()
	cluster.Eventually(t, 30*time.Second, func() bool { return rush.acked() >= after+300 })
	rush.stop(t)
	res = append(res, rush.results()...)
	errKinds := map[string]int{}
	var acked []int64
	for _, p := range res {
		if p.err != nil {
			errKinds[errKind(p.err)]++
		} else {
			acked = append(acked, p.id)
		}
	}
	t.Logf("NATS node loss: first acked publish %v after kill -9; %d publishes, %d acked, failed: %v",
		firstAck.Round(time.Millisecond), len(res), len(acked), errKinds)
	t.Logf("connected to %s after the kill", b.NC.ConnectedServerName())

	// Every acked publish becomes a row, through the fault.
	cluster.Eventually(t, 60*time.Second, func() error { return f.rowsExist(acked) })
	// The rest: a failed publish may or may not be stored. The reconciler
	// inserts what never reached the stream, as in production.
	rec := f.w.Reconciler()
	cluster.Eventually(t, 60*time.Second, func() error {
		if _, err := rec.RunOnce(ctx); err != nil {
			return err
		}
		all := make([]int64, len(res))
		for i, p := range res {
			all[i] = p.id
		}
		return f.rowsExist(all)
	})
	if n := f.countRows(t, "activity_id = $1", aid); n != int64(len(res)) {
		t.Fatalf("%d rows for %d sold units: an order is missing or doubled", n, len(res))
	}
	if len(res) > units {
		t.Fatalf("%d units sold of %d", len(res), units)
	}

	// Every order times out (nobody pays): the timers armed before the kill
	// fire after it, never early and within a generous bound; each order is
	// cancelled once and its unit comes back.
	cluster.Eventually(t, 90*time.Second, func() bool {
		return f.countRows(t, "activity_id = $1 AND status = 'CANCELLED'", aid) == int64(len(res))
	})
	lateness := f.lateness(t, armed)
	var worst time.Duration
	for id, d := range lateness {
		if d < 0 {
			t.Errorf("order %d cancelled %v before its expire_at", id, -d)
		}
		worst = max(worst, d)
	}
	if worst > 30*time.Second {
		t.Errorf("a timer armed before the kill fired %v late, want within 30s", worst)
	}
	t.Logf("timers armed before the kill: %d, worst lateness %v", len(armed), worst.Round(time.Millisecond))
	mu.Lock()
	for _, id := range armed {
		if cancelledBy[id] != 1 {
			t.Errorf("order %d cancelled by its timer %d times, want 1", id, cancelledBy[id])
		}
	}
	mu.Unlock()
	cluster.Eventually(t, 10*time.Second, func() error {
		if s := f.snapshot(t, aid, iid); s.Available != units || s.Held != 0 {
			return fmt.Errorf("after every timeout: %d available, %d held; want %d and 0", s.Available, s.Held, units)
		}
		return nil
	})
}

// streamInfo reads a stream's info from its leader.
func streamInfo(t *testing.T, b *order.Broker, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// moveLeaders asks the order stream, the timeout stream and their durable
// consumers to hand their leadership to the server named to, and waits
// until they did.
func moveLeaders(t *testing.T, b *order.Broker, to string) {
	t.Helper()
	orders, timeouts := b.Config().Stream, b.Config().Stream+"_TIMEOUTS"
	groups := []struct{ api, stream, consumer string }{
		{"STREAM.LEADER.STEPDOWN." + orders, orders, ""},
		{"STREAM.LEADER.STEPDOWN." + timeouts, timeouts, ""},
		{"CONSUMER.LEADER.STEPDOWN." + orders + ".persister", orders, "persister"},
		{"CONSUMER.LEADER.STEPDOWN." + timeouts + ".timeouts", timeouts, "timeouts"},
	}
	body, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to}})
	for _, g := range groups {
		cluster.Eventually(t, 30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var leader string
			if g.consumer == "" {
				s, err := b.JS.Stream(ctx, g.stream)
				if err != nil {
					return err
				}
				if info, err := s.Info(ctx); err != nil || info.Cluster == nil {
					return fmt.Errorf("stream %s info: %v", g.stream, err)
				} else {
					leader = info.Cluster.Leader
				}
			} else {
				c, err := b.JS.Consumer(ctx, g.stream, g.consumer)
				if err != nil {
					return err
				}
				if info, err := c.Info(ctx); err != nil || info.Cluster == nil {
					return fmt.Errorf("consumer %s info: %v", g.consumer, err)
				} else {
					leader = info.Cluster.Leader
				}
			}
			if leader == to {
				return nil
			}
			// Ask (again): a stepdown answered while an election is under
			// way may not land where preferred.
			if _, err := b.NC.RequestWithContext(ctx, "$JS.API."+g.api, body); err != nil {
				return err
			}
			return fmt.Errorf("%s led by %q, want %q", g.api, leader, to)
		})
	}
}

// timersArmed checks that each order has its schedule on the timeout stream.
func timersArmed(f *fixture, b *order.Broker, ids []int64) error {
	s, err := b.JS.Stream(f.ctx, b.Config().Stream+"_TIMEOUTS")
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := s.GetLastMsgForSubject(f.ctx, fmt.Sprintf("%s.timeout.sched.%d", b.Config().Subject, id)); err != nil {
			return fmt.Errorf("timer of order %d: %w", id, err)
		}
	}
	return nil
}

// rowsExist checks that every id is a row.
func (f *fixture) rowsExist(ids []int64) error {
	var n int
	if err := f.store.Pool().QueryRow(f.ctx, `SELECT count(*) FROM orders WHERE id = ANY($1)`, ids).Scan(&n); err != nil {
		return err
	}
	if n != len(ids) {
		return fmt.Errorf("%d of %d orders are rows", n, len(ids))
	}
	return nil
}

// lateness is cancelled_at - expire_at of each cancelled order of ids.
func (f *fixture) lateness(t *testing.T, ids []int64) map[int64]time.Duration {
	t.Helper()
	rows, err := f.store.Pool().Query(f.ctx,
		`SELECT id, cancelled_at - expire_at FROM orders WHERE id = ANY($1) AND status = 'CANCELLED'`, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]time.Duration{}
	for rows.Next() {
		var id int64
		var d time.Duration
		if err := rows.Scan(&id, &d); err != nil {
			t.Fatal(err)
		}
		out[id] = d
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(ids) {
		t.Fatalf("%d of %d orders cancelled", len(out), len(ids))
	}
	return out
}

// errKind names a publish error for the log.
func errKind(err error) string {
	switch {
	case errors.Is(err, order.ErrBrokerDown) && strings.Contains(err.Error(), nats.ErrDisconnected.Error()):
		return "disconnected"
	case errors.Is(err, order.ErrBrokerDown) && strings.Contains(err.Error(), jetstream.ErrNoStreamResponse.Error()):
		return "no stream leader"
	case errors.Is(err, order.ErrBrokerDown):
		return "broker down"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		s := err.Error()
		if i := strings.LastIndex(s, ": "); i >= 0 {
			s = s[i+2:]
		}
		return s
	}
}

// rush buys and publishes as gateways do: each worker buys a few units in
// Redis, then publishes them with one PublishMany, over and over.
type rush struct {
	f        *fixture
	aid, iid int64
	pub      *order.Publisher
	user     *atomic.Int64 // the last user id, shared by the rushes of a test
	nAcked   atomic.Int64
	halt     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	out    []published
	buyErr error
}

type published struct {
	id         int64
	start, end time.Time
	err        error
}

func newRush(f *fixture, aid, iid int64, users *atomic.Int64) *rush {
	// The gateway's default publish timeout (nats.publish_timeout).
	return &rush{f: f, aid: aid, iid: iid, user: users, pub: order.NewPublisher(f.broker, 2*time.Second),
		halt: make(chan struct{})}
}

func (r *rush) start(ctx context.Context, workers int) {
	for range workers {
		r.wg.Go(func() { r.run(ctx) })
	}
}

func (r *rush) run(ctx context.Context) {
	const perCall = 8
	for {
		select {
		case <-r.halt:
			return
		default:
		}
		if !r.f.broker.Connected() {
			// The gateway answers 503 before it reserves anything; the
			// buyer comes back a little later.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		rs := make([]stock.Reservation, 0, perCall)
		for range perCall {
			res, err := r.f.stock.Buy(ctx, stock.BuyRequest{ActivityID: r.aid, ItemID: r.iid,
				UserID: r.user.Add(1), OrderID: nextOrderID.Add(1), Quantity: 1})
			if errors.Is(err, stock.ErrSoldOut) || ctx.Err() != nil {
				break
			}
			if err != nil {
				r.mu.Lock()
				r.buyErr = err // Redis is not under test here
				r.mu.Unlock()
				return
			}
			rs = append(rs, res.Reservation)
		}
		if len(rs) == 0 {
			return
		}
		start := time.Now()
		errs := r.pub.PublishMany(ctx, rs)
		end := time.Now()
		r.mu.Lock()
		for i, res := range rs {
			r.out = append(r.out, published{id: res.OrderID, start: start, end: end, err: errs[i]})
			if errs[i] == nil {
				r.nAcked.Add(1)
			}
		}
		r.mu.Unlock()
	}
}

// stop ends the rush and fails the test if a buy failed.
func (r *rush) stop(t *testing.T) {
	t.Helper()
	close(r.halt)
	r.wg.Wait()
	if r.buyErr != nil {
		t.Fatalf("buy: %v", r.buyErr)
	}
}

func (r *rush) acked() int { return int(r.nAcked.Load()) }

func (r *rush) results() []published {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]published(nil), r.out...)
}

// firstAckAfter is the time from t to the earliest ack of a publish started
// after t.
func (r *rush) firstAckAfter(t time.Time) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first time.Time
	for _, p := range r.out {
		if p.err == nil && p.start.After(t) && (first.IsZero() || p.end.Before(first)) {
			first = p.end
		}
	}
	return first.Sub(t), !first.IsZero()
}
