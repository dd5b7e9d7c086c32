package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgCluster is a PostgreSQL cluster of the chaos run's own: initdb into a
// temp folder, pg_ctl start/stop on a free loopback port. PostgreSQL refuses
// to run as root, so as root every command runs as user postgres (runuser)
// on a folder that user owns.
type pgCluster struct {
	bindir  string
	root    string // owned by the server's user: data, sock, server.log
	port    int
	runAs   string // "" = the current user
	uid     int
	gid     int
	logPath string // pg_ctl's own output (the server's log is root/server.log)
}

// newPGCluster finds the installed binaries and runs initdb under dir.
func newPGCluster(ctx context.Context, dir, logPath string) (*pgCluster, error) {
	bindir, err := pgBindir()
	if err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	p := &pgCluster{bindir: bindir, root: filepath.Join(dir, "pg"), port: port, logPath: logPath, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user to run PostgreSQL as: %w", err)
		}
		p.runAs = "postgres"
		p.uid, _ = strconv.Atoi(u.Uid)
		p.gid, _ = strconv.Atoi(u.Gid)
		// The server's user must reach its folder through ours.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{p.root, filepath.Join(p.root, "sock")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		if p.runAs != "" {
			if err := os.Chown(d, p.uid, p.gid); err != nil {
				return nil, err
			}
		}
	}
	if err := p.run(ctx, "initdb", "-D", p.data(), "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, err
	}
	return p, nil
}

// pgBindir is `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin.
func pgBindir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL binaries: neither pg_config --bindir nor /usr/lib/postgresql/*/bin has pg_ctl")
}

func pgMajor(bindir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return n
}

func (p *pgCluster) data() string { return filepath.Join(p.root, "data") }

// DSN is the seckill database's connection string.
func (p *pgCluster) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// run runs one of the cluster's binaries (as the server's user), its output
// appended to the log.
func (p *pgCluster) run(ctx context.Context, bin string, args ...string) error {
	path := filepath.Join(p.bindir, bin)
	var cmd *exec.Cmd
	if p.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = p.root
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "==== chaos: %s %s at %s\n", bin, strings.Join(args, " "), time.Now().Format("15:04:05.000"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w (see %s)", bin, strings.Join(args, " "), err, p.logPath)
	}
	return nil
}

// start starts the server and waits until it accepts connections.
func (p *pgCluster) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
		p.port, filepath.Join(p.root, "sock"))
	return p.run(ctx, "pg_ctl", "-D", p.data(), "-o", opts, "-l", filepath.Join(p.root, "server.log"),
		"-w", "-t", "60", "start")
}

// stop stops the server: mode "fast" disconnects clients and shuts down
// cleanly, "immediate" is the cleanup after an interrupted run.
func (p *pgCluster) stop(ctx context.Context, mode string) error {
	return p.run(ctx, "pg_ctl", "-D", p.data(), "-m", mode, "-w", "-t", "60", "stop")
}

// createDB creates database name.
func (p *pgCluster) createDB(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// ready reports whether the server accepts a query.
func (p *pgCluster) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return false
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx) == nil
}

// serverLog copies the server's log next to the other logs (the server's
// user may not write into the output folder).
func (p *pgCluster) serverLog(dst string) {
	if b, err := os.ReadFile(filepath.Join(p.root, "server.log")); err == nil {
		_ = os.WriteFile(dst, b, 0o644)
	}
}
