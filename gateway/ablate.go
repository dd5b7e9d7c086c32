package gateway

import (
	"os"
	"strings"
)

// AblateEnv names the environment variable that switches the gateway's
// hand-written fast paths off, one by one, so that
// `go run ./loadtest/bench -ablate` can measure what each saves. It is a
// measuring knob, not configuration: a comma-separated list of FastPaths
// names, read once when the process starts, empty in production.
//
// Each fast path has a plain twin on the standard library or the library it
// shortcuts, which runs when it is switched off, with the same output:
//
//	jwtfast  jwtfast.go         → golang-jwt decides every token
//	buybody  buybody.go         → encoding/json reads every buy body
//	resp202  buy.go's 202 body  → gin's c.JSON of api.BuyAccepted
//
// Each saved at least 2% of the gateway's CPU per buy when measured (the
// README has the table); two that did not (a hand-written reservation
// encoder, byte-built Redis keys) were deleted.
const AblateEnv = "SECKILL_ABLATE"

// FastPaths lists every fast path AblateEnv can switch off, in the order
// the bench reports them.
var FastPaths = []string{"jwtfast", "buybody", "resp202"}

// ablated is the set named in AblateEnv at start. The fast paths copy their
// bit into a package variable once, so the hot path pays one bool load.
var ablated = parseAblate(os.Getenv(AblateEnv))

func parseAblate(v string) map[string]bool {
	m := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			m[name] = true
		}
	}
	return m
}

// unknownAblations returns the names in AblateEnv that name no fast path
// (a typo would otherwise measure nothing).
func unknownAblations() []string {
	var bad []string
	for name := range ablated {
		known := false
		for _, n := range FastPaths {
			known = known || n == name
		}
		if !known {
			bad = append(bad, name)
		}
	}
	return bad
}
