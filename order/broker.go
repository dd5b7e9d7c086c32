package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BrokerConfig says which NATS server carries the order streams.
type BrokerConfig struct {
	// URL of an external NATS server with JetStream, or a comma-separated
	// list of the nodes of a NATS cluster ("nats://a:4222,nats://b:4222");
	// the client connects to one and fails over to the others. Empty starts
	// an embedded nats-server inside this process.
	URL string
	// DataDir is the embedded server's JetStream file store.
	DataDir string
	// Listen is the embedded server's client address ("127.0.0.1:14222") so
	// other seckill processes can share it. Empty: in-process connections only.
	Listen string
	// Stream is the name of the order-created stream; Subject its subject
	// prefix (orders are published on "<Subject>.created.<order id>").
	Stream, Subject string
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id (≥ 2 min).
	DuplicateWindow time.Duration
	// Replicas of every stream seckill creates (orders, timeouts) on a
	// clustered external server: 3 on a 3-node cluster survives the loss of
	// one node. 1 when unset; more than 1 needs a JetStream cluster of at
	// least that many nodes. An existing stream with fewer replicas is
	// scaled up to it; one with more keeps them (EnsureStream).
	Replicas int
}

// Broker is a live connection to JetStream, plus the embedded server when
// this process runs one.
type Broker struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	cfg    BrokerConfig
	srv    *server.Server
	log    *slog.Logger
	orders jetstream.Stream
	// heldUntil (Unix ns) is when the order stream is tried again after a
	// publish found it without a leader, and hold the length of the
	// current hold (0 after a success); see Connected.
	heldUntil, hold atomic.Int64
}

// A publish that finds the order stream without a leader (no responder) or
// gets no ack in time holds the stream as down (Connected false) for
// minHold, doubling with each failed round up to maxHold, until a publish
// is acked. While a JetStream cluster elects a new leader (about 4-9 s
// after a node dies) every buy let through takes a unit and answers 503;
// held, a gateway lets one round of buys through per hold to find out
// whether the stream is back, instead of all of them, and is back at most
// maxHold after the stream is.
const (
	minHold = 250 * time.Millisecond
	maxHold = time.Second
)

// asyncAckTimeout is when the client drops an async publish's ack future.
const asyncAckTimeout = time.Minute

// ErrBrokerDown is returned when NATS is not connected.
var ErrBrokerDown = errors.New("order: message broker unavailable")

// OpenBroker connects to the configured NATS server (starting the embedded
// one when no URL is set) and makes sure the order-created stream exists.
func OpenBroker(ctx context.Context, log *slog.Logger, cfg BrokerConfig) (*Broker, error) {
	if cfg.DuplicateWindow < 2*time.Minute {
		cfg.DuplicateWindow = 2 * time.Minute
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	b := &Broker{cfg: cfg, log: log}
	// Reconnects never give up: a gateway without NATS answers 503 until
	// the connection is back (Connected), it does not exit. On a
	// disconnect, the client fails every publish still waiting for its ack
	// with ErrDisconnected (the publisher reports ErrBrokerDown: the order
	// may or may not be stored, and its reservation stays in Redis for the
	// persister or the reconciler). A node that stops answering without
	// closing its sockets (paused, partitioned) is noticed by the pings
	// within about PingInterval × (MaxPingsOut+1).
	opts := []nats.Option{
		nats.Name("seckill"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted()) }),
	}
	url := cfg.URL
	if url == "" {
		srv, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
		log.Info("embedded nats started", "listen", cfg.Listen, "data_dir", cfg.DataDir)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("order: connect nats: %w", err)
	}
	b.NC = nc
	// A future whose ack never comes (a reply lost in a server failover)
	// would otherwise stay pending until a reconnect and count against the
	// client's 4,000 in-flight async publishes. Publishers give up far
	// sooner (nats.publish_timeout); this only clears such leftovers.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(asyncAckTimeout))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("order: jetstream: %w", err)
	}
	b.JS = js
	if b.orders, err = b.ensureOrderStream(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func startEmbedded(cfg BrokerConfig) (*server.Server, error) {
	o := &server.Options{
		ServerName: "seckill-embedded",
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		DontListen: cfg.Listen == "",
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("order: nats listen address %q: %w", cfg.Listen, err)
		}
		o.Host = host
		if o.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("order: nats listen port %q: %w", port, err)
		}
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("order: embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("order: embedded nats did not start within 10s")
	}
	return srv, nil
}

// ensureOrderStream creates or updates the order-created stream: file
// storage (accepted orders must survive a broker restart), work-queue
// retention (a message lives until a persister acks it after commit) and a
// duplicate window so a republished order id is stored once.
func (b *Broker) ensureOrderStream(ctx context.Context) (jetstream.Stream, error) {
	st, _, err := b.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "seckill accepted orders waiting to be persisted",
		Subjects:    []string{b.cfg.Subject + ".created.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Duplicates:  b.cfg.DuplicateWindow,
		AllowDirect: true,
	})
	return st, err
}

// placementErrors are the JetStream errors of a stream asking for more
// replicas than the server or cluster has: replicas > 1 on a single server,
// no suitable peers, insufficient resources.
var placementErrors = map[jetstream.ErrorCode]bool{10074: true, 10005: true, 10023: true}

// EnsureStream creates the stream sc describes, or updates an existing one
// to it, with the broker's Replicas, and returns the stream with its
// configuration read back from the server (not the one sent: a server may
// drop fields it does not know). Every stream seckill uses goes through it.
//
// Replicas only go up here: an existing stream with fewer is scaled up
// (JetStream does that online), one with more keeps them and a warning is
// logged. A process started with a stale, lower nats.replicas must not
// take a replica away from the others' stream; scaling down is an
// operator's decision (nats stream edit). A setting the server cannot turn
// off once on (AllowMsgSchedules) is kept on. The read-back must show the
// replicas asked for, or EnsureStream fails. Calls that get no answer in
// time (a cluster starting or electing) are retried for up to a minute.
func (b *Broker) EnsureStream(ctx context.Context, sc jetstream.StreamConfig) (jetstream.Stream, jetstream.StreamConfig, error) {
	var st jetstream.Stream
	var got jetstream.StreamConfig
	err := retrySetup(ctx, func(ctx context.Context) (err error) {
		st, got, err = b.ensureStream(ctx, sc)
		return err
	})
	if err != nil {
		return nil, jetstream.StreamConfig{}, err
	}
	return st, got, nil
}

func (b *Broker) ensureStream(ctx context.Context, sc jetstream.StreamConfig) (jetstream.Stream, jetstream.StreamConfig, error) {
	sc.Replicas = b.cfg.Replicas
	cur, err := b.JS.Stream(ctx, sc.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return nil, jetstream.StreamConfig{}, fmt.Errorf("order: stream %s: %w", sc.Name, err)
	default:
		old := cur.CachedInfo().Config
		if old.Replicas > sc.Replicas {
			b.log.Warn("stream has more replicas than nats.replicas; keeping them",
				"stream", sc.Name, "replicas", old.Replicas, "nats.replicas", sc.Replicas)
			sc.Replicas = old.Replicas
		} else if old.Replicas < sc.Replicas {
			b.log.Info("scaling stream up", "stream", sc.Name, "from", old.Replicas, "to", sc.Replicas)
		}
		sc.AllowMsgSchedules = sc.AllowMsgSchedules || old.AllowMsgSchedules
	}
	st, err := b.JS.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && sc.Replicas > 1 && placementErrors[apiErr.ErrorCode] {
			err = fmt.Errorf("%w (nats.replicas=%d needs a JetStream cluster of at least %d nodes)", err, sc.Replicas, sc.Replicas)
		}
		return nil, jetstream.StreamConfig{}, fmt.Errorf("order: ensure stream %s: %w", sc.Name, err)
	}
	info, err := st.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		err = fmt.Errorf("%w: %w", errNotReadable, err)
	}
	if err != nil {
		return nil, jetstream.StreamConfig{}, fmt.Errorf("order: read back stream %s: %w", sc.Name, err)
	}
	if info.Config.Replicas != sc.Replicas {
		return nil, jetstream.StreamConfig{}, fmt.Errorf("order: stream %s: the server reports %d replicas after asking for %d",
			sc.Name, info.Config.Replicas, sc.Replicas)
	}
	return st, info.Config, nil
}

// Connected reports whether the NATS connection is up right now and the
// order stream is not held as down (cheap: no network round trip), so the
// gateway can refuse buys before reserving stock. A stream that had no
// leader or did not ack in time is held as down for a while (minHold).
func (b *Broker) Connected() bool {
	return b.NC != nil && b.NC.IsConnected() && time.Now().UnixNano() >= b.heldUntil.Load()
}

// holdStream marks the order stream as down for the next hold, unless a
// hold is under way (the other failures of the same round).
func (b *Broker) holdStream() {
	now := time.Now().UnixNano()
	if now < b.heldUntil.Load() {
		return
	}
	d := min(max(2*time.Duration(b.hold.Load()), minHold), maxHold)
	b.hold.Store(int64(d))
	b.heldUntil.Store(now + int64(d))
}

// streamAcked ends the backoff of holdStream: the stream answered.
func (b *Broker) streamAcked() {
	if b.hold.Load() != 0 {
		b.hold.Store(0)
	}
}

// Ping checks the broker end to end (readiness). It ignores the hold of
// a leaderless stream (Connected): a leader election must not take every
// gateway out of its load balancer at once; the buys answer 503 meanwhile.
func (b *Broker) Ping(ctx context.Context) error {
	if b.NC == nil || !b.NC.IsConnected() {
		return ErrBrokerDown
	}
	if _, err := b.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("order: jetstream account info: %w", err)
	}
	return nil
}

// OrderSubject is the subject an accepted order is published on; one subject
// per order lets the gateway read it back before the row exists.
func (b *Broker) OrderSubject(orderID int64) string {
	return b.cfg.Subject + ".created." + strconv.FormatInt(orderID, 10)
}

// Config returns the broker's configuration.
func (b *Broker) Config() BrokerConfig { return b.cfg }

// Close drains the connection (delivering what is buffered) and stops the
// embedded server, in that order: senders stop before the server they use.
func (b *Broker) Close() {
	if b.NC != nil {
		closed := make(chan struct{})
		b.NC.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := b.NC.Drain(); err == nil {
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
			}
		}
		b.NC.Close()
	}
	b.shutdownServer()
}

func (b *Broker) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}
