package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/loadtest/scenario"
)

// redisParagraph explains, with the run's numbers, what the Redis restart
// did and what a buyer whose 202 fell into the lost second sees.
func (ev *chaosEval) redisParagraph(ctx context.Context) string {
	cr := ev.cr
	f := cr.fault(faultRedis)
	if f == nil || f.at.IsZero() {
		return "Redis fsync window: the Redis fault did not run."
	}
	var ff faultFigures
	for _, x := range ev.figures {
		if x.f == f {
			ff = x
		}
	}
	var b strings.Builder
	var loadLost, probeLost []*chaosRow
	for _, o := range ev.lostLua {
		if o.aid == cr.r.Act.ID {
			loadLost = append(loadLost, o)
		} else {
			probeLost = append(probeLost, o)
		}
	}
	with202 := 0
	statuses := map[string]int{}
	for _, o := range loadLost {
		if _, ok := cr.r.Accepted[o.id]; ok {
			with202++
		}
		statuses[o.status]++
	}
	stale := func(k int) int64 {
		if k < len(ev.stale) && ev.stale[k] != nil {
			return ev.stale[k].d
		}
		return 0
	}
	var staleProbes int64
	for k := 1; k < len(ev.stale); k++ {
		staleProbes += stale(k)
	}
	fmt.Fprintf(&b, "Redis fsync window. After the kill -9 the append-only file was cut back by %d KiB, the writes of its last %v "+
		"(what a host crash loses under appendfsync everysec; a bare kill -9 leaves them in the page cache). ",
		f.cut.bytes/1024, f.cut.window.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "The restarted Redis lacked the writes of %d accepted buys (%d of the load, %d answered 202; %d of the probes): "+
		"their stock deduction, buyer count, reservation and Idempotency-Key. Its state, read at once, counted %+d units of the load's item "+
		"and %+d of the probes' as available that had been sold already. ", len(ev.lostLua), len(loadLost), with202, len(probeLost), stale(0), staleProbes)
	switch {
	case f.stale != nil && !f.fencedAt.IsZero() && !f.fencedAt.After(f.stale.at):
		b.WriteString("The new run_id had been noticed and every item fenced by the time of that first read; ")
	case !f.fencedAt.IsZero():
		fmt.Fprintf(&b, "The new run_id was noticed and every item fenced (seen %.2fs after Redis answered); ", f.fencedAt.Sub(f.back).Seconds())
	default:
		b.WriteString("The load's item was never seen fenced: nothing stopped sales on the stale state; ")
	}
	fmt.Fprintf(&b, "buys got 503 (%d answers, %d other) until the first 202, %.2fs after the kill", ff.after503, ff.afterOther, ff.recovery.Seconds())
	if !f.unfencedAt.IsZero() {
		fmt.Fprintf(&b, " (fence lifted by the rebuild from PostgreSQL %.2fs after Redis answered)", f.unfencedAt.Sub(f.back).Seconds())
	}
	b.WriteString(". ")
	if i := slices.Index(cr.cfg.kinds(), faultRedis); i < len(ev.probes) {
		v := ev.probes[i]
		verdict := "no unit was oversold"
		if v.maxLive > cr.cfg.ProbeStock {
			verdict = fmt.Sprintf("%d units were OVERSOLD", v.maxLive-cr.cfg.ProbeStock)
		}
		fmt.Fprintf(&b, "On the item that sold out across the restart %s: at most %d of its %d units were held at once", verdict, v.maxLive, cr.cfg.ProbeStock)
	}
	if ff.deviationKnown {
		fmt.Fprintf(&b, "; the checkpoint after the rebuild moved by %+d units (0: every unit counted exactly once)", ff.doubled-ff.stranded)
	}
	b.WriteString(".")
	if ff.stranded > 0 || ff.doubled > 0 {
		fmt.Fprintf(&b, " But the restart was not free: %d units stranded and %d offered twice across it (see the notes of fault %d).",
			ff.stranded, ff.doubled, slices.Index(cr.cfg.kinds(), faultRedis)+1)
	}
	b.WriteString("\n\n")

	ok, asked, sample := ev.askOrders(ctx, loadLost, 20)
	var st []string
	for k, n := range statuses {
		st = append(st, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(st)
	fmt.Fprintf(&b, "A buyer whose 202 fell into the lost second sees nothing unusual. The gateway published the order to JetStream "+
		"(Nats-Msg-Id = order id) before it answered 202, so the order never depended on the lost Redis writes: the workers persisted it "+
		"like any other (all %d of the load's such orders are rows now: %s), GET /api/v1/orders/{id} answered 200 for %d of the %d sampled%s, "+
		"and they pay, cancel or time out as usual. The rebuild waited for the order stream to drain and counted them as held units, "+
		"so their units were not sold a second time. What is gone is the Idempotency-Key: a resend after the restart is not recognised "+
		"as the same buy; with a per-user limit of 1 it is answered 409 LIMIT_EXCEEDED instead of the original 202 (%d such answers here).",
		len(loadLost), strings.Join(st, ", "), ok, asked, sample, ev.refusedHolders())
	return b.String()
}

// askOrders GETs up to n of the orders as their owners; it returns how many
// answered 200, how many were asked and a short sample of what they said.
func (ev *chaosEval) askOrders(ctx context.Context, rows []*chaosRow, n int) (ok, asked int, sample string) {
	r := ev.cr.r
	var seen []string
	for _, o := range rows {
		if asked == n {
			break
		}
		b := int(o.user - r.UserBase)
		if b < 0 || b >= len(r.Tokens) {
			continue
		}
		asked++
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ev.cr.lb.url+"/api/v1/orders/"+strconv.FormatInt(o.id, 10), nil)
		if err != nil {
			continue
		}
		req.Header.Set("Authorization", "Bearer "+r.Tokens[b])
		resp, err := ev.cr.client.Do(req)
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
			var body api.Order
			if json.Unmarshal(raw, &body) == nil && len(seen) < 3 {
				seen = append(seen, fmt.Sprintf("order %d: %s", o.id, body.Status))
			}
		}
	}
	if len(seen) > 0 {
		sample = " (" + strings.Join(seen, ", ") + ")"
	}
	return ok, asked, sample
}

// refusedHolders counts the load's buys answered 409 LIMIT_EXCEEDED whose
// buyer holds an order: resends whose Idempotency-Key Redis lost.
func (ev *chaosEval) refusedHolders() int {
	r := ev.cr.r
	holds := map[int64]bool{}
	for _, o := range ev.byAct[r.Act.ID] {
		holds[o.user] = true
	}
	n := 0
	for _, a := range r.Src.Attempts() {
		if a.Kind == scenario.OpBuy && a.Status == 409 && a.Code == "LIMIT_EXCEEDED" && holds[r.UserID(a.Buyer)] {
			n++
		}
	}
	return n
}
