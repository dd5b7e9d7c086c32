package gateway

import (
	"encoding/json"
	"testing"
)

// checkFastBody fails when fastBuyBody accepts a body encoding/json would
// refuse or read differently.
func checkFastBody(t *testing.T, body []byte) bool {
	t.Helper()
	fast, ok := fastBuyBody(body)
	if !ok {
		return false
	}
	var ref buyRequest
	if err := json.Unmarshal(body, &ref); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refused it: %v", body, err)
	}
	if fast != ref {
		t.Fatalf("fast path read %+v from %q, encoding/json %+v", fast, body, ref)
	}
	return true
}

// TestFastBuyBody pins which bodies take the fast path: the shape clients
// send must (or the hot path silently falls back to reflection), and the
// edges of its grammar must agree with encoding/json or be left to it.
func TestFastBuyBody(t *testing.T) {
	for _, tc := range []struct {
		body string
		fast bool
	}{
		{`{"activity_id":"12","item_id":"34","quantity":1}`, true},
		{`{"activity_id":12,"item_id":34,"quantity":2}`, true},
		{`{"activity_id":"123456789012345678","item_id":"1","quantity":999999999999999999}`, true},
		{`{"activity_id":"1234567890123456789","item_id":"1","quantity":1}`, false}, // 19 digits
		{`{"activity_id":"012","item_id":"34","quantity":1}`, false},                // leading zero
		{`{"activity_id":"0","item_id":"34","quantity":1}`, false},                  // not positive
		{`{"activity_id":"-1","item_id":"34","quantity":1}`, false},
		{`{"activity_id":"12","item_id":"34","quantity":0}`, false},
		{`{"activity_id":"12","item_id":"34","quantity":01}`, false},
		{`{"activity_id":"12","item_id":"34","quantity":"1"}`, false}, // quoted quantity
		{`{"activity_id":"12","item_id":"34","quantity":1.5}`, false},
		{`{"activity_id":"12","item_id":"34","quantity":1e0}`, false},
		{`{"activity_id":"12","item_id":"34","quantity":1} `, false},  // trailing space
		{`{"activity_id":"12","item_id":"34","quantity":1}{}`, false}, // trailing value
		{`{"activity_id":"12","item_id":"34","quantity":1,"x":1}`, false},
		{`{"item_id":"34","activity_id":"12","quantity":1}`, false},  // other order
		{`{"activity_id":"12", "item_id":"34","quantity":1}`, false}, // whitespace
		{`{"activity_id":"12","item_id":"34,"quantity":1}`, false},   // broken quote
		{`{"activity_id":12","item_id":"34","quantity":1}`, false},
		{`{"ACTIVITY_ID":"12","item_id":"34","quantity":1}`, false},
		{`{"activity_id":"12","item_id":"34","quantity":`, false},
		{``, false},
	} {
		if got := checkFastBody(t, []byte(tc.body)); got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.body, got, tc.fast)
		}
	}
}

// FuzzFastBuyBody: whatever the fast path accepts, encoding/json reads the
// same way.
func FuzzFastBuyBody(f *testing.F) {
	for _, s := range []string{
		`{"activity_id":"12","item_id":"34","quantity":1}`,
		`{"activity_id":12,"item_id":34,"quantity":2}`,
		`{"activity_id":"1","item_id":1,"quantity":10}`,
		`{"activity_id":"12","item_id":"34","quantity":1}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastBody(t, body) })
}
