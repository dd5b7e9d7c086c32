package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/seckill/seckill/loadtest/chaos"
	"github.com/seckill/seckill/loadtest/scenario"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// run picks the scenario or the drill by the first argument; it returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		usage(stderr)
		return scenario.ExitError
	}
	if args[0] == chaos.Name {
		return chaos.Main(ctx, args[1:], stdout, stderr)
	}
	code := scenario.Main(ctx, args[0], args[1:], stdout, stderr, env)
	if code == scenario.ExitError && !scenario.Known(args[0]) {
		usage(stderr)
	}
	return code
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: go run ./loadtest <scenario> [flags]\n\nscenarios:\n")
	scenario.Usage(w)
	fmt.Fprintf(w, "  %-10s %s\n", chaos.Name, chaos.About)
	fmt.Fprintf(w, "\nrun `go run ./loadtest <scenario> -h` for the flags\n")
}
