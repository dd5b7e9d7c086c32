package chaos

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/loadtest/scenario"
)

// balancer is the load balancer in front of the gateways, as a deployment
// would have one: it spreads requests over the backends, stops sending to a
// backend whose connection is refused or whose /healthz fails (checked every
// 200 ms), and answers 502 for a request whose backend died under it. It
// logs every answer with its backend and time, which is how the run tells
// when a path recovered.
type balancer struct {
	backends []*url.URL
	down     []atomic.Bool
	rr       atomic.Uint64
	rp       *httputil.ReverseProxy
	srv      *http.Server
	url      string

	mu   sync.Mutex
	hops []hop
}

// hop is one answer that passed the balancer.
type hop struct {
	at      time.Time
	attempt int             // the load's attempt id (?lt=), -1 for other requests
	backend int             // index into backends
	kind    scenario.OpKind // opBuy, opPay, opCancel; opOther for the rest
	status  int             // 502 when the backend failed, 499 when the client left
}

// opOther marks requests that are neither buy, pay nor cancel.
const opOther scenario.OpKind = 255

type backendKey struct{}

// hdrBackend tells the probes which backend answered.
const hdrBackend = "X-Chaos-Backend"

// newBalancer returns a balancer over the backends' base URLs; start serves it.
func newBalancer(backends []string) (*balancer, error) {
	b := &balancer{down: make([]atomic.Bool, len(backends))}
	for _, s := range backends {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		b.backends = append(b.backends, u)
	}
	dialer := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	b.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(b.backends[pr.In.Context().Value(backendKey{}).(int)])
		},
		Transport: &http.Transport{
			DialContext: dialer.DialContext, MaxIdleConns: 4000, MaxIdleConnsPerHost: 2000,
			IdleConnTimeout: 30 * time.Second,
		},
		ModifyResponse: func(resp *http.Response) error {
			i := resp.Request.Context().Value(backendKey{}).(int)
			resp.Header.Set(hdrBackend, strconv.Itoa(i))
			b.record(resp.Request, i, resp.StatusCode)
			return nil
		},
		ErrorHandler: b.failed,
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	return b, nil
}

// start listens on a free loopback port and health-checks until ctx ends.
func (b *balancer) start(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.url = "http://" + ln.Addr().String()
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	go b.healthLoop(ctx)
	return nil
}

func (b *balancer) close() {
	if b.srv != nil {
		_ = b.srv.Close()
	}
}

func (b *balancer) healthLoop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		for i, u := range b.backends {
			b.down[i].Store(!cluster.HTTPOK(ctx, u.String()+"/healthz"))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ServeHTTP picks a backend: the load's attempts by id (so the gateways
// share them evenly), others round-robin, skipping backends marked down.
func (b *balancer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := b.rr.Add(1)
	if id := scenario.AttemptID(req.URL.String()); id >= 0 {
		start = uint64(id)
	}
	n := uint64(len(b.backends))
	i := int(start % n)
	for k := range n {
		if j := int((start + k) % n); !b.down[j].Load() {
			i = j
			break
		}
	}
	b.rp.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), backendKey{}, i)))
}

// failed answers a request whose backend could not be reached or died.
func (b *balancer) failed(w http.ResponseWriter, req *http.Request, err error) {
	i := req.Context().Value(backendKey{}).(int)
	status := http.StatusBadGateway
	var op *net.OpError
	switch {
	case req.Context().Err() != nil:
		status = 499 // the client gave up; nobody reads this answer
	case errors.As(err, &op) && op.Op == "dial":
		b.down[i].Store(true)
	}
	b.record(req, i, status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(hdrBackend, strconv.Itoa(i))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"error":{"code":"BAD_GATEWAY","message":"gateway unreachable"}}`)
}

// record logs one answer (req is the outgoing or incoming request; both carry ?lt=).
func (b *balancer) record(req *http.Request, backend, status int) {
	h := hop{at: time.Now(), attempt: -1, backend: backend, status: status, kind: pathKind(req.URL.Path)}
	if s := req.URL.Query().Get("lt"); s != "" {
		h.attempt, _ = strconv.Atoi(s)
	}
	b.mu.Lock()
	b.hops = append(b.hops, h)
	b.mu.Unlock()
}

// pathKind tells a request's kind by its path.
func pathKind(p string) scenario.OpKind {
	switch {
	case p == "/api/v1/seckill":
		return scenario.OpBuy
	case p == "/api/v1/payments/callback":
		return scenario.OpPay
	case strings.HasPrefix(p, "/api/v1/orders/") && strings.HasSuffix(p, "/cancel"):
		return scenario.OpCancel
	}
	return opOther
}

// log returns every hop so far, in the order the answers passed.
func (b *balancer) log() []hop {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]hop(nil), b.hops...)
}
