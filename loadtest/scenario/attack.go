package scenario

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// attackOutput is what the attack phase leaves for the report and the checks.
type attackOutput struct {
	began, ended time.Time
	metrics      map[OpKind]*vegeta.Metrics
	outcomes     map[OpKind]map[string]int
	unsent       int // planned or scheduled, never sent (time limit or interrupt)
	resultsPath  string
	plotPath     string
}

// Attack runs the source through vegeta until it is idle or limit passes,
// and streams every result into the binary results file, the HTML plot, the
// per-kind metrics, the progress line and the scenario's reaction.
func (r *Session) Attack(ctx context.Context, limit time.Duration) (*attackOutput, error) {
	out := &attackOutput{
		metrics:     map[OpKind]*vegeta.Metrics{},
		outcomes:    map[OpKind]map[string]int{},
		resultsPath: filepath.Join(r.Config.Out, "results.bin"),
		plotPath:    filepath.Join(r.Config.Out, "plot.html"),
	}
	f, err := os.Create(out.resultsPath)
	if err != nil {
		return nil, fmt.Errorf("results file: %w", err)
	}
	defer f.Close()
	enc := vegeta.NewEncoder(f)
	p := plot.New(plot.Title("seckill "+r.Config.Scenario), plot.Label(func(res *vegeta.Result) string {
		if a := r.Src.byID(AttemptID(res.URL)); a != nil && a.answered {
			return label(a)
		}
		return "ERROR"
	}))

	// Our own client: vegeta's KeepAlive and HTTP2 options would assume
	// its *http.Transport, which abandonTransport wraps (keep-alive is on,
	// and a plain-http gateway speaks HTTP/1.1).
	atk := vegeta.NewAttacker(
		vegeta.Client(r.httpClient()),
		vegeta.Workers(16),
		vegeta.MaxWorkers(uint64(r.Config.MaxInFlight)),
	)
	stopOnCancel := context.AfterFunc(ctx, func() { r.Src.stop(); atk.Stop() })
	defer stopOnCancel()

	prog := newProgress(r.Config.Scenario, r.Stderr)
	prog.start()
	defer prog.stop()

	out.began = time.Now()
	results := atk.Attack(r.Src.targeter(), r.Src, limit, r.Config.Scenario)
	for res := range results {
		if err := enc.Encode(res); err != nil {
			r.Src.stop()
			atk.Stop()
			go func() { // vegeta's workers block until their results are taken
				for range results {
				}
			}()
			return nil, fmt.Errorf("write results: %w", err)
		}
		a := r.Src.byID(AttemptID(res.URL))
		if a != nil {
			record(a, res)
		}
		// Every result goes to the plot, which orders them by sequence number
		// and would hold back all points after a gap. After record: the
		// labeler reads the attempt.
		_ = p.Add(res)
		if a == nil {
			continue // vegeta's own error result after a stop: nothing was sent
		}
		m := out.metrics[a.Kind]
		if m == nil {
			m = &vegeta.Metrics{Histogram: &vegeta.Histogram{Buckets: histogramBuckets}}
			out.metrics[a.Kind] = m
		}
		m.Add(forMetrics(res))
		if out.outcomes[a.Kind] == nil {
			out.outcomes[a.Kind] = map[string]int{}
		}
		l := label(a)
		out.outcomes[a.Kind][l]++
		prog.add(l, res.Latency)
		now := time.Now()
		r.observe(a, now)
		more := r.Scenario.React(r, a, now)
		r.Src.finish(a, more)
		prog.setInFlight(r.Src.inFlight())
	}
	out.ended = time.Now()
	out.unsent = r.Src.unsent()
	for _, m := range out.metrics {
		m.Close()
	}
	p.Close()
	if err := writePlot(p, out.plotPath); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("results file: %w", err)
	}
	return out, ctx.Err()
}

// forMetrics is res as the text report should count it: vegeta keeps one
// entry per distinct error string, and transport errors quote the URL,
// whose ?lt=<id> would make every timeout an entry of its own.
func forMetrics(res *vegeta.Result) *vegeta.Result {
	if res.Error == "" {
		return res
	}
	c := *res
	if i := strings.LastIndex(res.URL, "?lt="); i >= 0 {
		c.Error = strings.ReplaceAll(res.Error, res.URL, res.URL[:i])
	}
	return &c
}

// Requests is the number of requests answered (or failed) over all kinds.
func (o *attackOutput) Requests() int {
	n := 0
	for _, m := range o.metrics {
		n += int(m.Requests)
	}
	return n
}

func writePlot(p *plot.Plot, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := p.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: %w", err)
	}
	return f.Close()
}

// inFlight returns the attempts claimed whose answers are not processed yet.
func (s *source) inFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight
}

// httpClient is the load client: keep-alive connections to the gateway, the
// per-request timeout, and abandonTransport for attempts that give up early.
func (r *Session) httpClient() *http.Client {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: r.Config.Timeout,
		Transport: abandonTransport{base: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConns:        r.Config.MaxInFlight,
			MaxIdleConnsPerHost: r.Config.MaxInFlight,
			IdleConnTimeout:     30 * time.Second,
		}},
		// A redirect is not part of the API; report it rather than follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// abandonTransport gives a request marked with hdrAbandon a deadline of its
// own: the client stops waiting while the server may still complete the
// request, which is what a lost response looks like to a buyer.
type abandonTransport struct{ base http.RoundTripper }

func (t abandonTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	v := req.Header.Get(hdrAbandon)
	if v == "" {
		return t.base.RoundTrip(req)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("loadtest: bad %s %q", hdrAbandon, v)
	}
	ctx, cancel := context.WithTimeout(req.Context(), d)
	req = req.Clone(ctx)
	req.Header.Del(hdrAbandon)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases a request's deadline once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
