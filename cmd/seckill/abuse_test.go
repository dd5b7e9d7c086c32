package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/seckill/stock/stocktest"
)

// startServe starts one `seckill serve --role=all` on a database, Redis
// prefix and embedded NATS of the test's own (no config file: defaults plus
// env), waits until it is ready, and returns it.
func startServe(t *testing.T, env map[string]string) *process {
	t.Helper()
	seckillBinary(t)
	_, keys := stocktest.New(t)
	port := freePort(t)
	vars := map[string]string{
		"SECKILL_POSTGRES_DSN":     newDatabase(t),
		"SECKILL_REDIS_ADDR":       stocktest.Addr(),
		"SECKILL_REDIS_KEY_PREFIX": keys.Prefix,
		"SECKILL_AUTH_SECRET":      e2eSecret,
		"SECKILL_PAYMENT_SECRET":   e2eSecret,
		"SECKILL_LOG_FORMAT":       "json",
		"SECKILL_HTTP_ADDR":        fmt.Sprintf("127.0.0.1:%d", port),
		"SECKILL_NATS_URL":         "",
		"SECKILL_NATS_LISTEN":      "",
		"SECKILL_NATS_DATA_DIR":    t.TempDir(),
		"SECKILL_SENTINEL_LOG_DIR": t.TempDir(),
	}
	for k, v := range env {
		vars[k] = v
	}
	p := startProcess(t, "seckill", port, vars, "--role=all")
	p.waitReady(30 * time.Second)
	return p
}

// rawConn is a client that writes exactly the bytes it is given and tells
// when the server answered and when it hung up.
type rawConn struct {
	c       net.Conn
	written atomic.Int64

	head     string        // status line and headers; "" if none came
	answered chan struct{} // closed once head is set
	closedAt time.Time     // when the server hung up
	closed   chan struct{} // closed once closedAt is set
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := &rawConn{c: c, answered: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		r.head = head.String()
		close(r.answered)
		_, _ = io.Copy(io.Discard, br) // until the server hangs up
		r.closedAt = time.Now()
		close(r.closed)
	}()
	return r
}

func (r *rawConn) write(s string) error {
	n, err := r.c.Write([]byte(s))
	r.written.Add(int64(n))
	return err
}

// dribble writes next(i) every `every` until the server answers or hangs
// up, max writes were made or a write failed.
func (r *rawConn) dribble(every time.Duration, max int, next func(i int) string) {
	for i := 0; i < max; i++ {
		select {
		case <-r.answered:
			return
		case <-time.After(every):
		}
		if r.write(next(i)) != nil {
			return
		}
	}
}

// answer waits up to limit for the server's answer.
func (r *rawConn) answer(t *testing.T, limit time.Duration) string {
	t.Helper()
	select {
	case <-r.answered:
		return r.head
	case <-time.After(limit):
		t.Fatalf("no answer within %v, after %d bytes sent", limit, r.written.Load())
		return ""
	}
}

// waitClosed returns how long after since the server hung up, failing the
// test if it has not within limit.
func (r *rawConn) waitClosed(t *testing.T, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	select {
	case <-r.closed:
		return r.closedAt.Sub(since)
	case <-time.After(limit):
		t.Fatalf("connection still open %v later", limit)
		return 0
	}
}

// These are timeout tests: they assert that the server's timeouts fire, with
// a generous margin for a loaded machine, and nothing about speed otherwise.
func TestSlowAndOversizedClientsCannotHoldConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against PostgreSQL and Redis")
	}
	t.Parallel()
	const headerTimeout, readTimeout, maxBody = time.Second, 2 * time.Second, int64(4096)
	p := startServe(t, map[string]string{
		"SECKILL_HTTP_READ_HEADER_TIMEOUT": headerTimeout.String(),
		"SECKILL_HTTP_READ_TIMEOUT":        readTimeout.String(),
		"SECKILL_HTTP_MAX_BODY_BYTES":      fmt.Sprint(maxBody),
	})
	const margin = 2 * time.Second

	t.Run("abuse", func(t *testing.T) { slowAndOversized(t, p, headerTimeout, readTimeout, maxBody, margin) })

	// The server still serves everyone else.
	resp, err := http.Get(p.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the abuse: %v %v", resp, err)
	}
	resp.Body.Close()
}

func slowAndOversized(t *testing.T, p *process, headerTimeout, readTimeout time.Duration, maxBody int64, margin time.Duration) {
	t.Run("headers sent slowly", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, p.url)
		start := time.Now()
		if err := c.write("GET /healthz HTTP/1.1\r\nHost: seckill\r\n"); err != nil {
			t.Fatal(err)
		}
		// One header line every 200 ms, for up to 10 s: never finishing.
		go c.dribble(200*time.Millisecond, 50, func(i int) string { return fmt.Sprintf("X-Slow-%d: y\r\n", i) })
		took := c.waitClosed(t, start, headerTimeout+margin)
		if head := c.answer(t, time.Second); strings.Contains(head, " 200 ") {
			t.Fatalf("an unfinished request was answered: %q", head)
		}
		t.Logf("server hung up %v after the first header byte (read_header_timeout %v), %d bytes sent",
			took.Round(time.Millisecond), headerTimeout, c.written.Load())
	})

	t.Run("body sent slowly", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, p.url)
		start := time.Now()
		if err := c.write("POST /api/v1/payments/callback HTTP/1.1\r\nHost: seckill\r\n" +
			"Content-Type: application/json\r\nX-Signature: 00\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		// One byte every 100 ms: the 1,000 bytes would take 100 s.
		go c.dribble(100*time.Millisecond, 1000, func(int) string { return " " })
		took := c.waitClosed(t, start, readTimeout+margin)
		head := c.answer(t, time.Second)
		if head != "" && !strings.HasPrefix(head, "HTTP/1.1 4") {
			t.Fatalf("slow body answered %q, want a 4xx or a hang-up", head)
		}
		t.Logf("server answered %q and hung up %v after the request started (read_timeout %v), %d bytes sent",
			firstLine(head), took.Round(time.Millisecond), readTimeout, c.written.Load())
	})

	t.Run("100 MB announced", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, p.url)
		if err := c.write("POST /api/v1/payments/callback HTTP/1.1\r\nHost: seckill\r\n" +
			"Content-Type: application/json\r\nX-Signature: 00\r\nContent-Length: 104857600\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// 8 KiB every 20 ms, stopping at 1 MiB: a server that waited for
		// the body would never answer.
		chunk := strings.Repeat("x", 8<<10)
		go c.dribble(20*time.Millisecond, 128, func(int) string { return chunk })
		head := c.answer(t, 10*time.Second)
		sent := c.written.Load()
		if !strings.HasPrefix(head, "HTTP/1.1 413 ") || !strings.Contains(strings.ToLower(head), "connection: close") {
			t.Fatalf("100 MB body: %q, want 413 with Connection: close", head)
		}
		if sent >= 1<<20 {
			t.Fatalf("the answer came after %d bytes were sent", sent)
		}
		c.waitClosed(t, time.Now(), margin)
		t.Logf("413 after %d bytes sent; connection closed", sent)
	})

	t.Run("chunked body over the limit", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, p.url)
		start := time.Now()
		if err := c.write("POST /api/v1/payments/callback HTTP/1.1\r\nHost: seckill\r\n" +
			"Content-Type: application/json\r\nX-Signature: 00\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// 1 KiB chunks every 5 ms, up to 1 MiB and never a last chunk.
		chunk := fmt.Sprintf("400\r\n%s\r\n", strings.Repeat("x", 1024))
		go c.dribble(5*time.Millisecond, 1024, func(int) string { return chunk })
		head := c.answer(t, 10*time.Second)
		sent := c.written.Load()
		if !strings.HasPrefix(head, "HTTP/1.1 413 ") {
			t.Fatalf("chunked body over the limit: %q, want 413", head)
		}
		// The limit, plus what was in flight while the answer was written.
		if sent > maxBody+64<<10 {
			t.Fatalf("413 came after %d bytes were sent; the limit is %d", sent, maxBody)
		}
		// After answering, net/http looks for the end of the body (at most
		// 256 KiB more) until read_timeout; then it hangs up.
		took := c.waitClosed(t, start, readTimeout+margin)
		t.Logf("413 after %d bytes sent (limit %d); connection closed %v after the request started",
			sent, maxBody, took.Round(time.Millisecond))
	})
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }
