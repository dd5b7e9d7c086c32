package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seckill/seckill/loadtest/scenario"
)

// probe is a fault's sell-out: an item of its own with a small stock, bought
// by fresh users at ProbeRate from just early enough that it sells out a
// moment before the fault, and on through the fault and its recovery. A
// third of the winners cancel at once, so units come back and are sold again
// right across the fault. The large-stock load cannot show an oversell; a
// sold-out item can: if the fault let Redis offer a unit twice, someone buys
// it, and the rows show more live units than stock at some instant.
type probe struct {
	act  scenario.Activity
	base int64 // user id of buyer 0

	mu       sync.Mutex
	answers  []probeAnswer
	accepted map[int64]time.Time // order id → first 202
	cancels  int                 // winners who cancelled
}

// probeAnswer is one answer a probe buyer got.
type probeAnswer struct {
	at      time.Time
	kind    scenario.OpKind
	status  int
	code    string
	backend int // -1 when the balancer did not answer
}

// probeLead is how long before its fault a probe starts: the time to sell
// its stock at its rate, plus half a second.
func (cr *chaosRun) probeLead() time.Duration {
	return time.Duration(float64(cr.cfg.ProbeStock)/float64(cr.cfg.ProbeRate)*float64(time.Second)) + 500*time.Millisecond
}

// probeHold is how long after its fault a probe goes on buying: through
// PostgreSQL's outage, otherwise half a gap.
func (cr *chaosRun) probeHold(k faultKind) time.Duration {
	if k == faultPG {
		return cr.cfg.PGDown + 2*time.Second
	}
	return cr.cfg.Gap/2 + time.Second
}

// run sends one new buyer per tick until until, then waits for every buyer
// (and its cancel) to finish.
func (p *probe) run(ctx context.Context, cr *chaosRun, until time.Time) {
	tick := time.NewTicker(time.Second / time.Duration(cr.cfg.ProbeRate))
	defer tick.Stop()
	var wg sync.WaitGroup
	maxBuyers := int(time.Until(until).Seconds()*float64(cr.cfg.ProbeRate)) + 1
	for b := 0; b < maxBuyers && time.Now().Before(until); b++ {
		wg.Add(1)
		go func() { defer wg.Done(); p.buyer(ctx, cr, b) }()
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	wg.Wait()
}

// buyer buys once with its own Idempotency-Key, resending like the load's
// buyers do; a third of the winners cancel right away.
func (p *probe) buyer(ctx context.Context, cr *chaosRun, b int) {
	user := strconv.FormatInt(p.base+int64(b), 10)
	tok, err := cr.auth.Mint(user, "", time.Hour)
	if err != nil {
		return
	}
	body := fmt.Sprintf(`{"activity_id":"%d","item_id":"%d","quantity":1}`, p.act.ID, p.act.ItemID)
	key := chaosKey("cp", b)
	for try := 0; try <= chaosBuyRetries; try++ {
		ans, order := p.send(ctx, cr, http.MethodPost, "/api/v1/seckill?probe="+strconv.FormatInt(p.act.ItemID, 10), tok, key, body, scenario.OpBuy)
		if ans.status == http.StatusAccepted && order != 0 {
			p.mu.Lock()
			if _, seen := p.accepted[order]; !seen {
				p.accepted[order] = ans.at
			}
			p.mu.Unlock()
			if rand.N(3) == 0 {
				p.cancel(ctx, cr, tok, order)
			}
			return
		}
		if ans.status != 0 && ans.status < 500 && ans.status != http.StatusTooManyRequests {
			return // a final answer: SOLD_OUT, LIMIT_EXCEEDED, …
		}
		if sleepCtx(ctx, min(scenario.BuyBackoff<<try, scenario.BuyMaxWait)) != nil {
			return
		}
	}
}

// cancel cancels a probe order, retrying while the answer is not final (503:
// not persisted yet, or PostgreSQL down).
func (p *probe) cancel(ctx context.Context, cr *chaosRun, tok string, order int64) {
	p.mu.Lock()
	p.cancels++
	p.mu.Unlock()
	for try := range chaosFollowUpTrials {
		ans, _ := p.send(ctx, cr, http.MethodPost, "/api/v1/orders/"+strconv.FormatInt(order, 10)+"/cancel", tok, "", "", scenario.OpCancel)
		if ans.status != 0 && ans.status < 500 {
			return
		}
		if sleepCtx(ctx, followUpBackoffAt(try)) != nil {
			return
		}
	}
}

// send sends one request through the balancer and records the answer.
func (p *probe) send(ctx context.Context, cr *chaosRun, method, path, tok, key, body string, kind scenario.OpKind) (probeAnswer, int64) {
	ans := probeAnswer{kind: kind, backend: -1}
	var order int64
	req, err := http.NewRequestWithContext(ctx, method, cr.lb.url+path, strings.NewReader(body))
	if err == nil {
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		var resp *http.Response
		if resp, err = cr.client.Do(req); err == nil {
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			ans.status = resp.StatusCode
			ans.backend, _ = strconv.Atoi(resp.Header.Get(hdrBackend))
			var a scenario.Answer
			if json.Unmarshal(raw, &a) == nil {
				ans.code = a.Error.Code
				order = int64(a.OrderID)
			}
		}
	}
	if err != nil {
		ans.code = "TRANSPORT"
		if scenario.IsTimeout(err.Error()) {
			ans.code = "TIMEOUT"
		}
	}
	ans.at = time.Now()
	p.mu.Lock()
	p.answers = append(p.answers, ans)
	p.mu.Unlock()
	return ans, order
}

// probeVerdict is what the rows say about one probe after the run.
type probeVerdict struct {
	accepted, cancels int
	rows, lost        int
	maxLive           int64     // most units held at one instant
	maxLiveAt         time.Time // when
	finalLive         int64
	outcomes          string
}

// verdict reads the probe's rows: every 202 must be a row, and at no instant
// may more units be held (created, not yet cancelled) than the stock. A
// creation counts from created_ms + 1 ms, the latest it can have happened,
// so a unit resold right after its return never looks held twice.
func (p *probe) verdict(byAct map[int64][]*chaosRow, stockN int64) probeVerdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	rows := byAct[p.act.ID]
	v := probeVerdict{accepted: len(p.accepted), cancels: p.cancels, rows: len(rows)}
	have := map[int64]bool{}
	type ev struct {
		at  time.Time
		qty int64
	}
	var evs []ev
	for _, o := range rows {
		have[o.id] = true
		evs = append(evs, ev{time.UnixMilli(o.createdMs + 1), o.qty})
		if o.status == "CANCELLED" && o.cancelledAt != nil {
			evs = append(evs, ev{*o.cancelledAt, -o.qty})
		} else {
			v.finalLive += o.qty
		}
	}
	for id := range p.accepted {
		if !have[id] {
			v.lost++
		}
	}
	slices.SortFunc(evs, func(a, b ev) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return int(a.qty - b.qty) // returns before sales at the same instant
	})
	var live int64
	for _, e := range evs {
		live += e.qty
		if live > v.maxLive {
			v.maxLive, v.maxLiveAt = live, e.at
		}
	}
	counts := map[string]int{}
	for _, a := range p.answers {
		if a.kind == scenario.OpBuy {
			counts[answerLabel(a.status, a.code)]++
		}
	}
	v.outcomes = scenario.OutcomeList(counts, 5)
	return v
}

func answerLabel(status int, code string) string {
	switch {
	case status == 0:
		return code
	case code != "":
		return strconv.Itoa(status) + " " + code
	}
	return strconv.Itoa(status)
}
