package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/seckill/gateway"
)

// These tests do not run in parallel: the first changes the process-wide
// Sentinel rules, the second reads the process-wide heap size.

// abuseClient keeps its connections, so a flood measures the gateway rather
// than the dialer.
func abuseClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// post sends a JSON POST and returns the status, the error code and the
// time to the answer; it is safe from many goroutines (no t.Fatal).
func post(client *http.Client, url, token string, body []byte) (int, string, time.Duration, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		return r.Status, "429 without Retry-After", took, err
	}
	return r.Status, r.code(), took, err
}

func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(d), percentile(d, 0.50).Round(time.Microsecond),
		percentile(d, 0.99).Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
}

func TestOneUsersFloodIsHeldToTheUserRate(t *testing.T) {
	const userQPS = 10
	h := setupWith(t, setupOpts{flow: &gateway.FlowConfig{LogDir: sentinelLogDir, BuyQPS: 1e6, UserQPS: userQPS,
		BreakerErrors: 1e6, BreakerWindowMs: 1000, BreakerRetryMs: 1000}})
	aid, iid := h.publishActivity(activityOpts{stock: 10_000, limit: 1000})
	client := abuseClient(t)
	url := h.srv.URL + "/api/v1/seckill"
	body := []byte(fmt.Sprintf(`{"activity_id":%q,"item_id":%q,"quantity":1}`, aid, iid))
	hot, calm := h.userToken(31337), h.userToken(4242)

	// The hot user aims at 1,000 requests in one second: request k leaves
	// no earlier than k ms after the start, from 16 connections. The whole
	// flood is cut off after 5 s whatever the machine manages.
	const flood = 1000
	start := time.Now()
	stop := start.Add(5 * time.Second)
	var (
		mu                  sync.Mutex
		hotLat, calmLat     []time.Duration
		hotOK, hotLimited   atomic.Int64
		calmOK, calmRefused atomic.Int64
		sent                atomic.Int64
	)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := sent.Add(1) - 1
				if k >= flood || time.Now().After(stop) {
					return
				}
				// Pacing, not synchronisation: the flood is sent at 1,000/s.
				time.Sleep(time.Until(start.Add(time.Duration(k) * time.Millisecond)))
				status, code, took, err := post(client, url, hot, body)
				switch {
				case err != nil:
					t.Errorf("hot user: %v", err)
				case status == http.StatusAccepted:
					hotOK.Add(1)
				case status == http.StatusTooManyRequests && code == "RATE_LIMITED":
					hotLimited.Add(1)
				default:
					t.Errorf("hot user: %d %s", status, code)
				}
				mu.Lock()
				hotLat = append(hotLat, took)
				mu.Unlock()
			}
		}()
	}
	// Meanwhile another user buys four times a second, under the limit.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < 5; k++ {
			// Pacing: the calm user's rate (4/s) is what is under test.
			time.Sleep(time.Until(start.Add(time.Duration(k) * 250 * time.Millisecond)))
			status, code, took, err := post(client, url, calm, body)
			if err != nil || status != http.StatusAccepted {
				calmRefused.Add(1)
				t.Errorf("calm user's buy %d during the flood: %d %s %v", k, status, code, err)
				continue
			}
			calmOK.Add(1)
			mu.Lock()
			calmLat = append(calmLat, took)
			mu.Unlock()
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	n := hotOK.Load() + hotLimited.Load()
	t.Logf("hot user: %d requests in %v (%.0f/s): %d accepted, %d RATE_LIMITED; latency %s",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), hotOK.Load(), hotLimited.Load(), quantiles(hotLat))
	t.Logf("calm user: %d accepted, %d refused; latency %s", calmOK.Load(), calmRefused.Load(), quantiles(calmLat))

	// At most the per-user rate for each started second (plus one second
	// of slack for a window straddling the start).
	if limit := int64(userQPS) * (int64(elapsed/time.Second) + 2); hotOK.Load() > limit {
		t.Errorf("hot user got %d buys accepted in %v, more than %d at %d/s", hotOK.Load(), elapsed, limit, userQPS)
	}
	if hotLimited.Load() < n/2 {
		t.Errorf("only %d of %d flood requests were rate limited", hotLimited.Load(), n)
	}
	if calmOK.Load() != 5 {
		t.Errorf("calm user: %d of 5 buys accepted", calmOK.Load())
	}
	// Rate-limited attempts reserved nothing.
	h.drain()
	if st := h.stats(aid); st.Pending != hotOK.Load()+calmOK.Load() || !st.Consistent {
		t.Fatalf("stats %+v, want pending %d", st, hotOK.Load()+calmOK.Load())
	}
}

func TestUnknownIDsCostNothing(t *testing.T) {
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 10})
	r := h.replica()
	ctx := context.Background()
	if err := r.catalog.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	items := len(r.catalog.Items())
	client := abuseClient(t)
	token := h.userToken(5)
	known, _ := strconv.ParseInt(aid, 10, 64)
	knownItem, _ := strconv.ParseInt(iid, 10, 64)
	before := h.snapshot()

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	heapBefore := heap()
	// 10,000 buys of distinct unknown (activity, item) pairs: an unknown
	// activity with a real item, a real activity with an unknown item, or
	// both unknown; and 1,000 reads of distinct unknown activities.
	const buys, reads = 10_000, 1_000
	var wrong atomic.Int64
	parallel(buys+reads, 8, func(k int) {
		if k >= buys {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/activities/%d", r.http.URL, known+1_000_000+int64(k)), nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("read %d: %v", k, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 {
				wrong.Add(1)
			}
			return
		}
		a, i := known, knownItem
		switch k % 3 {
		case 0:
			a = known + 1_000_000 + int64(k)
		case 1:
			i = knownItem + 1_000_000 + int64(k)
		default:
			a, i = known+2_000_000+int64(k), knownItem+2_000_000+int64(k)
		}
		status, code, _, err := post(client, r.http.URL+"/api/v1/seckill", token,
			[]byte(fmt.Sprintf(`{"activity_id":"%d","item_id":"%d","quantity":1}`, a, i)))
		if err != nil || status != 404 || code != "NOT_FOUND" {
			if wrong.Add(1) <= 5 {
				t.Errorf("buy of unknown (%d, %d): %d %s %v", a, i, status, code, err)
			}
		}
	})
	heapAfter := heap()
	if wrong.Load() != 0 {
		t.Fatalf("%d of %d requests for unknown ids were not 404", wrong.Load(), buys+reads)
	}
	if after := h.snapshot(); after != before {
		t.Fatalf("requests for unknown ids changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := len(r.catalog.Items()); got != items {
		t.Fatalf("catalog holds %d items after the flood, %d before", got, items)
	}
	growth := int64(heapAfter) - int64(heapBefore)
	t.Logf("live heap %d KiB before, %d KiB after %d unknown ids (%+d KiB)",
		heapBefore>>10, heapAfter>>10, buys+reads, growth>>10)
	if growth > 20<<20 {
		t.Fatalf("live heap grew by %d MiB over %d unknown ids", growth>>20, buys+reads)
	}
	// The real item still sells.
	if got := h.on(r).buy(5, aid, iid, 1); got.Status != 202 {
		t.Fatalf("real buy after the flood: %d %s", got.Status, got.Body)
	}
}
