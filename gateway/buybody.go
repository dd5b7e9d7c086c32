package gateway

import (
	"encoding/json"
)

// The buy body is decoded on every buy. Clients send it in one shape,
// {"activity_id":"1","item_id":"2","quantity":1}, so that shape is read by
// hand and anything else goes to encoding/json, which stays the authority:
// fastBuyBody may only accept a body json.Unmarshal reads the same way
// (FuzzFastBuyBody checks this), and it never rejects one by itself.

// noFastBuyBody switches the hand reader off (SECKILL_ABLATE=buybody).
var noFastBuyBody = ablated["buybody"]

// parseBuyBody decodes a buy request body.
func parseBuyBody(body []byte) (buyRequest, error) {
	if !noFastBuyBody {
		if req, ok := fastBuyBody(body); ok {
			return req, nil
		}
	}
	var req buyRequest
	err := json.Unmarshal(body, &req)
	return req, err
}

// fastBuyBody reads exactly `{"activity_id":ID,"item_id":ID,"quantity":N}`:
// those keys in that order, no whitespace, each ID a positive decimal with
// no leading zero in double quotes (at most 18 digits), N the same but bare.
// Any other body returns false.
func fastBuyBody(b []byte) (buyRequest, bool) {
	var req buyRequest
	rest, ok := cutPrefix(b, `{"activity_id":`)
	if !ok {
		return req, false
	}
	var v int64
	if v, rest, ok = fastID(rest); !ok {
		return req, false
	}
	req.ActivityID = ID(v)
	if rest, ok = cutPrefix(rest, `,"item_id":`); !ok {
		return req, false
	}
	if v, rest, ok = fastID(rest); !ok {
		return req, false
	}
	req.ItemID = ID(v)
	if rest, ok = cutPrefix(rest, `,"quantity":`); !ok {
		return req, false
	}
	n := digits(rest)
	if n == 0 || n > 18 || rest[0] == '0' || len(rest) != n+1 || rest[n] != '}' {
		return req, false
	}
	req.Quantity = quantity(rest[:n])
	return req, true
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return nil, false
	}
	return b[len(prefix):], true
}

// fastID reads a positive decimal of at most 18 digits without a leading
// zero, in double quotes.
func fastID(b []byte) (int64, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return 0, nil, false
	}
	b = b[1:]
	n := digits(b)
	if n == 0 || n > 18 || b[0] == '0' {
		return 0, nil, false
	}
	var v int64
	for _, c := range b[:n] {
		v = v*10 + int64(c-'0')
	}
	b = b[n:]
	if len(b) == 0 || b[0] != '"' {
		return 0, nil, false
	}
	return v, b[1:], true
}

// digits counts the leading ASCII digits of b.
func digits(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}
