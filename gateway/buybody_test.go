package gateway

import (
	"encoding/json"
	"strconv"
	"strings"
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
		{`{"activity_id":12,"item_id":34,"quantity":2}`, false}, // bare ids: refused
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

// TestBuyBodyOneSpelling: the fast reader and its authority refuse every
// spelling of an id but the canonical decimal, and a quoted quantity; a
// quantity that is a JSON number but no integer decodes and is refused by
// the handler (INVALID_QUANTITY).
func TestBuyBodyOneSpelling(t *testing.T) {
	for _, tc := range []struct {
		aid, iid, qty string
		decodes       bool
	}{
		{`"12"`, `"34"`, `1`, true},
		{`12`, `34`, `1`, false}, // an id is a string
		{`"12"`, `34`, `1`, false},
		{`"9223372036854775807"`, `"1"`, `1`, true}, // int64's largest: the authority only
		{`"001"`, `"34"`, `1`, false},
		{`"12"`, `"01"`, `1`, false},
		{`"0"`, `"34"`, `1`, false},
		{`"-1"`, `"34"`, `1`, false},
		{`"+1"`, `"34"`, `1`, false},
		{`" 1"`, `"34"`, `1`, false},
		{`"1 "`, `"34"`, `1`, false},
		{`"\u0031"`, `"34"`, `1`, false},
		{`"1.0"`, `"34"`, `1`, false},
		{`1.0`, `34`, `1`, false},
		{`1e0`, `34`, `1`, false},
		{`-0`, `34`, `1`, false},
		{`""`, `"34"`, `1`, false},
		{`null`, `"34"`, `1`, false},
		{`"9223372036854775808"`, `"1"`, `1`, false}, // beyond int64
		{`"12"`, `"34"`, `"1"`, false},
		{`"12"`, `"34"`, `true`, false},
		{`"12"`, `"34"`, `1.0`, true}, // decodes; the handler refuses it
		{`"12"`, `"34"`, `1e0`, true},
	} {
		body := []byte(`{"activity_id":` + tc.aid + `,"item_id":` + tc.iid + `,"quantity":` + tc.qty + `}`)
		checkFastBody(t, body)
		_, err := parseBuyBody(body)
		if (err == nil) != tc.decodes {
			t.Errorf("%s: decode error %v, want decodes %v", body, err, tc.decodes)
		}
		var ref buyRequest
		if err := json.Unmarshal(body, &ref); (err == nil) != tc.decodes {
			t.Errorf("%s: encoding/json error %v, want decodes %v", body, err, tc.decodes)
		}
	}
}

// buyOutcome is what the handler makes of a decoded body: the values it
// would buy with, or refused (ok false).
func buyOutcome(req buyRequest) (aid, iid, qty int64, ok bool) {
	q, err := strconv.ParseInt(string(req.Quantity), 10, 64)
	if err != nil || q < 1 || req.ActivityID < 1 || req.ItemID < 1 {
		return 0, 0, 0, false
	}
	return int64(req.ActivityID), int64(req.ItemID), q, true
}

// FuzzFastBuyBody: whatever the fast path accepts, encoding/json reads the
// same way; and in the shape clients send, with each value one JSON token,
// the two agree on refusals too: a body the authority would buy with is
// one the fast path reads, unless a value is longer than its 18 digits.
func FuzzFastBuyBody(f *testing.F) {
	for _, s := range [][4]string{
		{`{"activity_id":"12","item_id":"34","quantity":1}`, `"12"`, `"34"`, `1`},
		{`{"activity_id":12,"item_id":34,"quantity":2}`, `12`, `34`, `2`},
		{`{"activity_id":"1","item_id":1,"quantity":10}`, `"001"`, `"01"`, `"1"`},
		{`{"activity_id":"12","item_id":"34","quantity":1}x`, `1.0`, `1e0`, `1.0`},
		{`{"activity_id":"012","item_id":"34","quantity":1}`, `"+1"`, `" 1"`, `-1`},
	} {
		f.Add([]byte(s[0]), s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, body []byte, aid, iid, qty string) {
		checkFastBody(t, body)
		tokens := []string{aid, iid, qty}
		for _, tok := range tokens {
			if !json.Valid([]byte(tok)) || strings.TrimLeft(strings.TrimRight(tok, " \t\r\n"), " \t\r\n") != tok {
				return // not one bare JSON value: the shape is not the one clients send
			}
		}
		shaped := []byte(`{"activity_id":` + aid + `,"item_id":` + iid + `,"quantity":` + qty + `}`)
		fastOK := checkFastBody(t, shaped)
		var ref buyRequest
		if err := json.Unmarshal(shaped, &ref); err != nil {
			if fastOK {
				t.Fatalf("fast path accepted %s, encoding/json refused it: %v", shaped, err)
			}
			return
		}
		if _, _, _, buys := buyOutcome(ref); !buys || fastOK {
			return
		}
		for _, tok := range tokens {
			if len(strings.Trim(tok, `"`)) > 18 {
				return // past the fast path's digits: left to encoding/json
			}
		}
		t.Fatalf("encoding/json reads %s as %+v, a buy; the fast path refused it", shaped, ref)
	})
}
