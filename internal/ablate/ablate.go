// Package ablate switches seckill's hand-written fast paths off, one by
// one, so that `go run ./loadtest/bench -ablate` can measure what each
// saves. It is a measuring knob, not configuration: the set is read once,
// from the SECKILL_ABLATE environment variable (a comma-separated list of
// the names below), when the process starts, and is empty in production.
//
// Each fast path has a plain twin built on the standard library, which is
// what runs when it is switched off, with the same output:
//
//	jwtfast     gateway/jwtfast.go      → golang-jwt decides every token
//	buybody     gateway/buybody.go      → encoding/json reads every buy body
//	resp202     gateway/buy.go 202 body → gin's c.JSON with a struct
//	appendjson  stock.Reservation.AppendJSON → encoding/json with a struct
//	keys        stock/keys.go itemKey   → string concatenation
package ablate

import (
	"os"
	"strings"
)

// EnvVar names the environment variable read at start.
const EnvVar = "SECKILL_ABLATE"

// Names lists every fast path that can be switched off, in the order the
// bench reports them.
var Names = []string{"jwtfast", "buybody", "resp202", "appendjson", "keys"}

var off = parse(os.Getenv(EnvVar))

func parse(v string) map[string]bool {
	m := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			m[name] = true
		}
	}
	return m
}

// Off reports whether the named fast path is switched off. Callers read it
// once into a package variable, so the hot path pays one bool load.
func Off(name string) bool { return off[name] }

// Unknown returns the names in SECKILL_ABLATE that name no fast path
// (a typo would otherwise measure nothing).
func Unknown() []string {
	var bad []string
	for name := range off {
		known := false
		for _, n := range Names {
			known = known || n == name
		}
		if !known {
			bad = append(bad, name)
		}
	}
	return bad
}
