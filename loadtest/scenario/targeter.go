package scenario

import (
	"container/heap"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// source feeds vegeta. It is the attack's Pacer: each Pace call claims the
// attempt due next (the planned ones in order at the rate, scheduled retries
// and follow-ups at their due time) and waits for one when none is due yet,
// so answers can schedule more work during the attack. Its targeter hands
// the claimed attempts out, one per tick. The attack ends when nothing is
// planned, scheduled or in flight.
//
// Pace and the targeter are called from different goroutines of vegeta, and
// the result consumer adds work from a third; mu guards the queues.
type source struct {
	rate vegeta.ConstantPacer
	base string
	tok  func(buyer int) string // bearer token of a buyer
	sig  func(body []byte) string
	buy  []byte // the buy body, the same for every buy of the run

	mu       sync.Mutex
	all      []*Attempt
	Plan     []int // ids of planned attempts, in send order
	next     int   // next index into plan
	later    dueHeap
	inflight int // claimed, answer not yet processed
	stopped  bool

	ready chan int      // claimed ids, one per vegeta tick
	wake  chan struct{} // new work or a finished attempt
	done  chan struct{} // closed by stop
}

// NewSource returns a source sending at rate per second.
func NewSource(rate int, base string, tok func(int) string, sig func([]byte) string, buyBody []byte) *source {
	return &source{
		rate: vegeta.ConstantPacer{Freq: rate, Per: time.Second},
		base: strings.TrimRight(base, "/"), tok: tok, sig: sig, buy: buyBody,
		// A claimed id is taken by the very next tick; only a stopped attack
		// leaves one behind, so a small buffer never blocks the pacer.
		ready: make(chan int, 64),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// AddPlanned appends attempts to the plan, sent in this order at the rate.
func (s *source) AddPlanned(as ...*Attempt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range as {
		s.register(a)
		s.Plan = append(s.Plan, a.ID)
	}
}

func (s *source) register(a *Attempt) {
	a.ID = len(s.all)
	s.all = append(s.all, a)
}

// finish records that a's answer was processed and schedules more work (its
// retry, a follow-up). Both happen under one lock, so the source is never
// seen idle between an answer and the work it causes.
func (s *source) finish(a *Attempt, more []*Attempt) {
	s.mu.Lock()
	s.inflight--
	for _, m := range more {
		s.register(m)
		heap.Push(&s.later, m)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop makes Pace end the attack at its next call.
func (s *source) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.done)
	}
}

// Attempts returns every attempt registered so far.
func (s *source) Attempts() []*Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Attempt(nil), s.all...)
}

// byID returns attempt id, or nil.
func (s *source) byID(id int) *Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 0 || id >= len(s.all) {
		return nil
	}
	return s.all[id]
}

// unsent counts attempts that were planned or scheduled but never sent
// (the attack hit its time limit or was stopped).
func (s *source) unsent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Plan) - s.next + s.later.Len() + len(s.ready)
}

// claimAhead is how far ahead of its moment an attempt is claimed: vegeta
// sleeps the rest. Claiming later keeps a retry scheduled meanwhile from
// queueing behind a far-off one.
const claimAhead = 10 * time.Millisecond

// Pace implements vegeta.Pacer. Planned attempts go out at the rate (vegeta's
// hit count includes follow-ups, so the plan keeps its own count), scheduled
// ones when due, on top of the rate; whichever is due first is claimed.
func (s *source) Pace(elapsed time.Duration, _ uint64) (time.Duration, bool) {
	began := time.Now()
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return 0, true
		}
		now := time.Now()
		wait, planned, found := time.Duration(0), false, false
		if s.next < len(s.Plan) {
			w, stop := s.rate.Pace(elapsed+now.Sub(began), uint64(s.next))
			if !stop {
				wait, planned, found = w, true, true
			}
		}
		if s.later.Len() > 0 {
			if w := max(0, s.later[0].Due.Sub(now)); !found || w < wait {
				wait, planned, found = w, false, true
			}
		}
		if !found && s.inflight == 0 {
			s.mu.Unlock()
			return 0, true // everything sent and answered
		}
		if found && wait <= claimAhead {
			var id int
			if planned {
				id = s.Plan[s.next]
				s.next++
			} else {
				id = heap.Pop(&s.later).(*Attempt).ID
			}
			s.inflight++
			s.mu.Unlock()
			s.ready <- id
			return wait, false
		}
		s.mu.Unlock()
		nap := 50 * time.Millisecond // an answer in flight may schedule work
		if found {
			nap = min(nap, wait-claimAhead)
		}
		t := time.NewTimer(max(nap, time.Millisecond))
		select {
		case <-s.wake:
		case <-t.C:
		case <-s.done:
		}
		t.Stop()
	}
}

// Rate implements vegeta.Pacer.
func (s *source) Rate(elapsed time.Duration) float64 { return s.rate.Rate(elapsed) }

// errNoClaim stops the attack if vegeta ever ticks without a claim, which
// Pace rules out; it is a safety net, not a path.
var errNoClaim = errors.New("loadtest: targeter called without a claimed attempt")

// targeter returns the vegeta.Targeter that turns claimed attempts into requests.
func (s *source) targeter() vegeta.Targeter {
	return func(t *vegeta.Target) error {
		var id int
		select {
		case id = <-s.ready:
		case <-time.After(5 * time.Second):
			return errNoClaim
		}
		a := s.byID(id)
		s.fill(t, a)
		return nil
	}
}

// hdrAbandon carries attempt.abandonAfter to abandonTransport, which strips it.
const hdrAbandon = "X-Loadtest-Abandon-After"

func (s *source) fill(t *vegeta.Target, a *Attempt) {
	lt := "?lt=" + strconv.Itoa(a.ID) // the result names its attempt
	h := http.Header{"Content-Type": []string{"application/json"}}
	t.Method = http.MethodPost
	switch a.Kind {
	case OpBuy:
		t.URL = s.base + "/api/v1/seckill" + lt
		t.Body = s.buy
		h.Set("Authorization", "Bearer "+s.tok(a.Buyer))
		if a.Key != "" {
			h.Set("Idempotency-Key", a.Key)
		}
	case OpPay:
		t.URL = s.base + "/api/v1/payments/callback" + lt
		t.Body = a.Body
		h.Set("X-Signature", s.sig(a.Body))
	case OpCancel:
		t.URL = s.base + "/api/v1/orders/" + strconv.FormatInt(a.OrderID, 10) + "/cancel" + lt
		t.Body = nil
		h.Set("Authorization", "Bearer "+s.tok(a.Buyer))
	}
	if a.abandonAfter > 0 {
		h.Set(hdrAbandon, a.abandonAfter.String())
	}
	t.Header = h
}

// AttemptID recovers the attempt id from a result's URL; -1 when it has
// none (vegeta's own error results).
func AttemptID(url string) int {
	i := strings.LastIndex(url, "?lt=")
	if i < 0 {
		return -1
	}
	id, err := strconv.Atoi(url[i+len("?lt="):])
	if err != nil {
		return -1
	}
	return id
}

// dueHeap orders scheduled attempts by due time.
type dueHeap []*Attempt

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].Due.Before(h[j].Due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(*Attempt)) }
func (h *dueHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	*h = old[:len(old)-1]
	return a
}
