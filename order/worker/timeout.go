package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock/lifecycle"
)

// TimeoutConfig tunes the payment-timeout timers.
type TimeoutConfig struct {
	Stream  string // default SECKILL_TIMEOUTS
	Durable string // default "timeouts"
	Batch   int    // due messages handled per batch
	// FallbackMaxAckPending sizes the consumer when the server cannot
	// schedule messages: every pending order is then an in-flight,
	// NAK-delayed message and counts against MaxAckPending.
	FallbackMaxAckPending int
	// DisableSchedules forces the fallback even on a server that schedules.
	DisableSchedules bool
}

// Timeouts fires each order's payment timeout at its expire_at.
//
// On nats-server 2.12+ it uses JetStream message schedules: persisting an
// order publishes a message on "<subject>.timeout.sched.<id>" with
// "Nats-Schedule: @at <expire_at>"; at that time the server copies it to
// "<subject>.timeout.due.<id>", which the consumer turns into a cancel.
// On an older server (the stream comes back without AllowMsgSchedules) the
// message goes straight to the due subject and the consumer holds it back
// with NakWithDelay until expire_at; a 2.12+ server whose stream comes back
// without it is a configuration error (OpenTimeouts fails), not a silent
// fallback. The stream has the broker's replicas (nats.replicas), and a
// replicated stream schedules as a single one does: its leader fires them,
// and a new leader after a failover fires those still due.
//
// Either way an early message never cancels early: the cancel's UPDATE
// also requires expire_at <= now(), and an early arrival waits for the rest.
type Timeouts struct {
	cfg       TimeoutConfig
	b         *order.Broker
	reader    *batchReader
	cancel    *order.Canceller
	store     *order.Store
	scheduled bool
	log       *slog.Logger
	now       func() time.Time
	// OnCancelled, when set, is told each order this timer cancelled and
	// when (tests measure lateness with it).
	OnCancelled func(o order.Order, at time.Time)

	// returning holds a token per stock return in flight (see returnStock).
	returning chan struct{}
	returns   sync.WaitGroup
}

// Stock returns after a timeout run beside the timer loop, so that a Redis
// shard that stopped answering (a master frozen until the cluster fails it
// over) delays its own returns, not every later order's cancellation.
const (
	// returnSlots bounds the returns in flight; when all are taken the
	// batch's return is left to the sweeper (return_retry_after).
	returnSlots = 4
	// returnWait is how long a batch waits for its return before the loop
	// moves on; a healthy Redis answers well within it, so the loop runs
	// as if the return were synchronous.
	returnWait = 200 * time.Millisecond
	// returnTimeout bounds a return that outlived returnWait.
	returnTimeout = 30 * time.Second
)

type timeoutMsg struct {
	OrderID  int64 `json:"order_id,string"`
	ExpireMs int64 `json:"expire_ms"`
}

// OpenTimeouts creates the timeout stream (Broker.EnsureStream) and
// consumer and reports (with a warning) when it has to fall back to delayed
// redelivery on a server older than 2.12.
func OpenTimeouts(ctx context.Context, log *slog.Logger, b *order.Broker, st *order.Store, c *order.Canceller, cfg TimeoutConfig) (*Timeouts, error) {
	if cfg.Stream == "" {
		cfg.Stream = "SECKILL_TIMEOUTS"
	}
	if cfg.Durable == "" {
		cfg.Durable = "timeouts"
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.FallbackMaxAckPending <= 0 {
		cfg.FallbackMaxAckPending = 1_000_000
	}
	sc := jetstream.StreamConfig{
		Name:              cfg.Stream,
		Description:       "seckill payment-timeout timers",
		Subjects:          []string{b.Config().Subject + ".timeout.>"},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		MaxAge:            50 * time.Hour, // > the longest payment timeout (24h) plus a day of downtime
		Duplicates:        b.Config().DuplicateWindow,
		AllowMsgSchedules: !cfg.DisableSchedules,
	}
	// EnsureStream reads the config back from the stream: an old server
	// accepts the field and silently drops it.
	_, got, err := b.EnsureStream(ctx, sc)
	if err != nil {
		return nil, err
	}
	scheduled := got.AllowMsgSchedules && !cfg.DisableSchedules
	if !got.AllowMsgSchedules && !cfg.DisableSchedules {
		// A server that can schedule yet dropped the setting (a cluster
		// mid-upgrade whose stream peers or meta leader are older) would
		// leave the timers on the fallback without anyone having chosen it.
		if v := b.NC.ConnectedServerVersion(); serverSchedules(v) {
			return nil, fmt.Errorf("order: stream %s: the NATS server (%s) dropped message schedules (allow_msg_schedules) "+
				"from the stream's configuration; is every node of the cluster 2.12 or newer? "+
				"Set nats.schedules=off to run the timers on delayed redelivery instead", cfg.Stream, v)
		}
		log.Warn("NATS server cannot schedule messages (needs 2.12+); payment timeouts fall back to delayed redelivery",
			"stream", cfg.Stream, "server_version", b.NC.ConnectedServerVersion(), "max_ack_pending", cfg.FallbackMaxAckPending)
	}
	maxAck := 20 * cfg.Batch
	if !scheduled {
		maxAck = cfg.FallbackMaxAckPending
	}
	cons, err := b.EnsureConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "seckill workers cancelling unpaid orders",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: maxAck,
		FilterSubject: b.Config().Subject + ".timeout.due.>",
	})
	if err != nil {
		return nil, fmt.Errorf("order: timeout consumer: %w", err)
	}
	// A due timer is handled as soon as it arrives; only timers arriving
	// within 5 ms of it share its batch.
	reader := newBatchReader(cons, cfg.Batch, 250*time.Millisecond, 5*time.Millisecond)
	return &Timeouts{cfg: cfg, b: b, reader: reader, cancel: c, store: st, scheduled: scheduled, log: log, now: time.Now,
		returning: make(chan struct{}, returnSlots)}, nil
}

// scheduleAckWait bounds how long Schedule waits for the timers' acks. An
// ack lost with a stream leader that died never comes; the batch fails and
// is retried (redelivered, or the reconciler's next pass) once a new leader
// is elected, a few seconds later. Healthy acks take milliseconds.
const scheduleAckWait = 3 * time.Second

// serverSchedules reports whether a nats-server of version v ("2.12.1")
// has message schedules (2.12 and newer).
func serverSchedules(v string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 2 || major == 2 && minor >= 12
}

// Scheduled reports whether the server schedules the timers (false: fallback).
func (t *Timeouts) Scheduled() bool { return t.scheduled }

// Schedule arms the timers of persisted orders; it is the persister's
// AfterPersist hook. Scheduling an order twice is harmless: a schedule
// subject holds one schedule (the newer replaces the older), the message id
// dedupes within the window, and a second cancel finds nothing PENDING.
func (t *Timeouts) Schedule(ctx context.Context, orders []order.Order) error {
	// An ack lost with a stream leader that died would otherwise hold the
	// persister's batch until its AckWait; failing sooner redelivers it.
	ctx, cancel := context.WithTimeout(ctx, scheduleAckWait)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(orders))
	for _, o := range orders {
		if o.Status != order.StatusPending {
			continue
		}
		data, _ := json.Marshal(timeoutMsg{OrderID: o.ID, ExpireMs: o.ExpireAt.UnixMilli()})
		id := strconv.FormatInt(o.ID, 10)
		due := t.b.Config().Subject + ".timeout.due." + id
		msg := &nats.Msg{Subject: due, Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "timeout-"+id)
		if t.scheduled {
			msg.Subject = t.b.Config().Subject + ".timeout.sched." + id
			// Full precision: the server parses RFC 3339 with fractions, and
			// whole seconds would fire up to a second early.
			msg.Header.Set(jetstream.ScheduleHeader, "@at "+o.ExpireAt.UTC().Format(time.RFC3339Nano))
			msg.Header.Set(jetstream.ScheduleTargetHeader, due)
		}
		f, err := t.b.JS.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("order: schedule timeout of %d: %w", o.ID, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("order: schedule timeout: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("order: schedule timeout: waiting for acks: %w", ctx.Err())
		}
	}
	return nil
}

// Service handles due timers back to back while it runs, backing off
// (100ms doubling to 1s) between failures: after an outage (PostgreSQL,
// NATS) the timers resume within a second of it, since every order that fell
// due meanwhile is already late. A soft stop finishes the batch that was
// read, then hands prefetched timers back to JetStream.
func (t *Timeouts) Service() *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "timeouts", Log: t.log,
		Backoff:   lifecycle.Backoff{Min: 100 * time.Millisecond, Max: time.Second},
		AfterStop: func() { t.reader.close(); t.WaitReturns() }},
		func(ctx context.Context) error {
			// The consumer's AckWait: a batch held longer is redelivered anyway.
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := t.RunOnce(ctx)
			return err
		})
}

// RunOnce fetches one batch of due timers and cancels the orders still
// PENDING; it returns how many orders it cancelled.
func (t *Timeouts) RunOnce(ctx context.Context) (int, error) {
	batch, err := t.reader.next(ctx)
	if err != nil {
		return 0, fmt.Errorf("order: fetch timeouts: %w", err)
	}
	now := t.now()
	due := map[int64]jetstream.Msg{}
	var ids []int64
	for _, msg := range batch {
		var m timeoutMsg
		if err := json.Unmarshal(msg.Data(), &m); err != nil || m.OrderID == 0 {
			t.log.Error("terminating undecodable timeout message", "subject", msg.Subject())
			_ = msg.Term()
			continue
		}
		if wait := time.UnixMilli(m.ExpireMs).Sub(now); wait > 0 {
			// Early (the fallback always is): come back exactly when due.
			_ = msg.NakWithDelay(wait)
			continue
		}
		due[m.OrderID] = msg
		ids = append(ids, m.OrderID)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	won, err := t.cancel.Decide(ctx, ids, order.CancelTimeout, true)
	at := time.Now()
	if t.OnCancelled != nil {
		for _, o := range won {
			t.OnCancelled(o, at)
		}
	}
	if err != nil && len(won) == 0 {
		for _, msg := range due {
			_ = msg.NakWithDelay(time.Second)
		}
		return 0, err
	}
	if err != nil {
		t.log.Warn("after the timeout's update; sweeper will finish the stock return", "err", err)
	}
	// The cancel itself is done, so the timers are acked; a stock return
	// that fails after the UPDATE is the sweeper's to finish.
	for _, o := range won {
		_ = due[o.ID].Ack()
		delete(due, o.ID)
	}
	if err == nil {
		t.returnStock(ctx, won)
	}
	// The rest were paid or cancelled already, or the database clock says
	// not yet due: hold those back briefly, ack the others.
	rest := make([]int64, 0, len(due))
	for id := range due {
		rest = append(rest, id)
	}
	pending, err := t.store.StillPending(ctx, rest)
	if err != nil {
		for _, msg := range due {
			_ = msg.NakWithDelay(time.Second)
		}
		return len(won), err
	}
	for id, msg := range due {
		if pending[id] {
			_ = msg.NakWithDelay(100 * time.Millisecond)
		} else {
			_ = msg.Ack()
		}
	}
	return len(won), nil
}

// returnStock gives the cancelled orders' units back beside the loop: it
// waits up to returnWait for the return, then lets it finish on its own
// (up to returnSlots at once; beyond that the sweeper finishes it).
func (t *Timeouts) returnStock(ctx context.Context, won []order.Order) {
	select {
	case t.returning <- struct{}{}:
	default:
		t.log.Warn("stock returns after timeouts all still in flight (a Redis shard not answering?); the sweeper will finish these",
			"orders", len(won))
		return
	}
	done := make(chan struct{})
	t.returns.Add(1)
	go func() {
		defer t.returns.Done()
		defer func() { <-t.returning }()
		defer close(done)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), returnTimeout)
		defer cancel()
		if err := t.cancel.ReturnStock(rctx, won); err != nil {
			t.log.Warn("stock return after timeout failed; sweeper will finish it", "orders", len(won), "err", err)
		}
	}()
	wait := time.NewTimer(returnWait)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
	case <-ctx.Done():
	}
}

// WaitReturns waits until every stock return started by RunOnce finished.
func (t *Timeouts) WaitReturns() { t.returns.Wait() }
