// Command seckill is the flash-sale gateway and worker.
//
//	seckill serve   [--config FILE] [--role all|gateway|worker]
//	seckill migrate [--config FILE]
//	seckill token   [--config FILE] (--user ID [--ttl 24h] | --admin)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2) // usage was printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "seckill:", err)
		os.Exit(1)
	}
}

const usage = `usage: seckill <command> [flags]

commands:
  serve    run the gateway and/or worker (--role all|gateway|worker)
  migrate  apply the embedded PostgreSQL migrations and exit
  token    print a signed JWT (--user ID [--ttl 24h] | --admin)

every command takes --config FILE (default configs/seckill.yaml when present);
every setting can be overridden with SECKILL_<SECTION>_<KEY>.`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default configs/seckill.yaml if it exists)")
	role := fs.String("role", "all", "serve: all, gateway or worker")
	user := fs.String("user", "", "token: user id (sub claim)")
	admin := fs.Bool("admin", false, "token: mint an admin token")
	ttl := fs.Duration("ttl", 0, "token: lifetime (default 24h user, 1h admin)")
	switch cmd {
	case "serve", "migrate", "token":
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	path := *configPath
	if path == "" {
		if _, err := os.Stat("configs/seckill.yaml"); err == nil {
			path = "configs/seckill.yaml"
		}
	}
	cfg, err := loadConfig(path, env)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	switch cmd {
	case "migrate":
		return migrate(ctx, log, cfg)
	case "token":
		return printToken(stdout, cfg, *user, *admin, *ttl)
	}
	switch *role {
	case "all", "gateway", "worker":
	default:
		return fmt.Errorf("--role must be all, gateway or worker, not %q", *role)
	}
	return serve(ctx, log, cfg, *role)
}

func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
