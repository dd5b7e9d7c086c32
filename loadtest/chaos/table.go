package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// table renders the per-fault figures, their notes and a legend.
func (ev *chaosEval) table() string {
	cr := ev.cr
	var b strings.Builder
	w := cr.cfg.Window
	fmt.Fprintf(&b, "== chaos: faults under load (times in s since the load started; ±%v around each fault)\n", w)
	fmt.Fprintf(&b, "%-20s %6s %8s %8s %5s %8s %7s %8s %6s %9s  %s\n",
		"fault", "at", "202s±", "errors±", "lost", "oversold", "dbl-ret", "stranded", "down", "recovery", "recovery path")
	var lost, over, dbl, strand int64
	dash := func(ok bool, n int64) string {
		if !ok {
			return "n/a"
		}
		return strconv.FormatInt(n, 10)
	}
	secs := func(ok bool, d time.Duration) string {
		if !ok {
			return "never"
		}
		return fmt.Sprintf("%.2f", d.Seconds())
	}
	for _, ff := range ev.figures {
		errs := 0
		for _, n := range ff.errs {
			errs += n
		}
		lost, over, dbl, strand = lost+int64(ff.lost), over+ff.oversold, dbl+ff.doubled, strand+ff.stranded
		at := ff.f.at
		if at.IsZero() {
			at = ff.f.due
		}
		fmt.Fprintf(&b, "%-20s %6.1f %8d %8d %5d %8d %7s %8s %6s %9s  %s\n",
			ff.f.name, cr.since(at), ff.accepted, errs, ff.lost, ff.oversold,
			dash(ff.deviationKnown, ff.doubled), dash(ff.deviationKnown, ff.stranded),
			secs(!ff.f.back.IsZero(), ff.down), secs(ff.recovered, ff.recovery), ff.recoveryPath)
	}
	fmt.Fprintf(&b, "%-20s %6s %8s %8s %5d %8d %7d %8d\n", "total", "", "", "", lost, over, dbl, strand)
	verdict := "PASS: nothing lost, oversold, returned twice or stranded"
	if lost+over+dbl+strand > 0 {
		verdict = "FAIL: see the non-zero columns"
	}
	fmt.Fprintf(&b, "%s\n\nper fault:\n", verdict)
	for i, ff := range ev.figures {
		fmt.Fprintf(&b, "  %d. %s: buy errors ±%v: %s; pay/cancel errors until %v after it was back: %s",
			i+1, ff.f.name, w, countList(ff.errs), w, countList(ff.followUpErrs))
		if ff.f.note != "" {
			fmt.Fprintf(&b, "; %s", ff.f.note)
		}
		fmt.Fprintf(&b, "\n     payment timeouts expiring in its segment with timers up: %d, %d cancelled over 1s late (%d of them never answered 202; worst %v)",
			ff.timeouts, ff.lateTimeouts, ff.lateNo202, ff.worstTimeout.Round(time.Millisecond))
		if ff.lateTimeouts > 0 {
			fmt.Fprintf(&b, ", the late ones expiring %+.1fs to %+.1fs from the fault", ff.lateFrom.Sub(ff.f.at).Seconds(), ff.lateTo.Sub(ff.f.at).Seconds())
		}
		if i < len(ev.probes) {
			v := ev.probes[i]
			fmt.Fprintf(&b, "\n     probe item %d: %d accepted (%d cancelled by the buyer), held at most %d of %d units at once",
				cr.probes[i].act.ItemID, v.accepted, v.cancels, v.maxLive, cr.cfg.ProbeStock)
			if !v.maxLiveAt.IsZero() {
				fmt.Fprintf(&b, " (first at %.1fs)", cr.since(v.maxLiveAt))
			}
			fmt.Fprintf(&b, ", %d live at the end; answers %s", v.finalLive, v.outcomes)
		}
		if ff.f.kind == faultRedisKill || ff.f.kind == faultRedisPause {
			fmt.Fprintf(&b, "\n     failover in %v; %d load buy answers 503 and %d other between the failover and the first load 202",
				ff.f.failover.Round(time.Millisecond), ff.after503, ff.afterOther)
		}
		if ff.f.kind == faultRedis {
			fmt.Fprintf(&b, "\n     AOF cut by %d bytes (%v of writes); %d buy answers 503 and %d other between Redis back and the first 202",
				ff.f.cut.bytes, ff.f.cut.window.Round(time.Millisecond), ff.after503, ff.afterOther)
		}
		if note := ev.strandedNote(i); note != "" {
			fmt.Fprintf(&b, "\n     %s", note)
		}
		if ff.f.err != nil {
			fmt.Fprintf(&b, "\n     ERROR: %v", ff.f.err)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\ncheckpoints (deviation per item: load item, probes 1–%d; 0 = every unit counted once):\n", len(cr.probes))
	for si, devs := range ev.devs {
		fmt.Fprintf(&b, "  %-22s", cr.snaps[si].label)
		if devs == nil {
			fmt.Fprintf(&b, " not read: %v\n", cr.snaps[si].err)
			continue
		}
		fmt.Fprintf(&b, " at %5.1fs:", cr.since(cr.snaps[si].at))
		for _, d := range devs {
			if d == nil {
				b.WriteString(" ?")
				continue
			}
			fmt.Fprintf(&b, " %+d", d.d)
		}
		if devs[0] != nil {
			fmt.Fprintf(&b, "   (load item: %s)", devs[0])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, `
columns: 202s± = the load's orders first answered 202 within the window; errors± = buy answers
5xx (502: the balancer's backend died under the request; 503: seckill refused) or 499 (client
gave up), load and probes; lost = 202s of the fault's segment (window before it to window before
the next) without a row after the drain; oversold = units of the fault's sell-out probe held
beyond its stock at the worst instant (rows: created_ms+1ms .. cancelled_at); dbl-ret / stranded =
rise / fall of the checkpoint deviation across the fault (available + reserved + live + returning
− stock, exact under load, summed over items): units Redis would hand out twice (a return counted
twice or a deduction lost), or units no longer counted anywhere; down = until the part ran (was
ready) again; recovery = until the first success on the path the fault broke.
`)
	return b.String()
}

// strandedNote describes the stranded returns whose cancel falls in fault
// i's segment: when they were cancelled, relative to the fault or, for
// Redis, to the moment the rebuild was seen to lift the fence.
func (ev *chaosEval) strandedNote(i int) string {
	cr := ev.cr
	f := cr.faults[i]
	var next time.Time
	if i+1 < len(cr.faults) {
		next = cr.faults[i+1].at
	}
	ref, what := f.at, "the fault"
	if !f.unfencedAt.IsZero() {
		ref, what = f.unfencedAt, "the rebuild was seen to lift the fence"
	}
	var offs []string
	for _, o := range ev.stranded {
		if o.cancelledAt == nil || o.cancelledAt.Before(f.at) || (!next.IsZero() && !o.cancelledAt.Before(next)) {
			continue
		}
		offs = append(offs, fmt.Sprintf("%+dms", o.cancelledAt.Sub(ref).Milliseconds()))
	}
	if len(offs) == 0 {
		return ""
	}
	slices.Sort(offs)
	return fmt.Sprintf("STRANDED: %d cancelled orders whose buyer still holds the unit in Redis (their return did not stick); "+
		"cancelled at %s relative to when %s", len(offs), strings.Join(offs, " "), what)
}

// countList formats counts by key, keys sorted: "502×2 503×40", or "none".
func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}
