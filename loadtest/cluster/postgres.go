package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresDSNEnv names the environment variable holding the admin DSN of
// the local test PostgreSQL.
const PostgresDSNEnv = "SECKILL_TEST_POSTGRES_DSN"

// defaultPostgresDSN is the local test server: PostgreSQL with trust auth.
const defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresDSN is the admin DSN of the local test server:
// $SECKILL_TEST_POSTGRES_DSN, or postgres@127.0.0.1:5432.
func PostgresDSN() string {
	if dsn := os.Getenv(PostgresDSNEnv); dsn != "" {
		return dsn
	}
	return defaultPostgresDSN
}

// CreateDatabase creates an empty database "<prefix>_<random hex>" on the
// server adminDSN points at and returns its DSN and a drop function that
// removes it, closing any connection left open.
func CreateDatabase(ctx context.Context, adminDSN, prefix string) (dsn string, drop func(context.Context) error, err error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand contract)
	name := prefix + "_" + hex.EncodeToString(b)
	do := func(ctx context.Context, stmt string) error {
		conn, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			return fmt.Errorf("cluster: connect to PostgreSQL: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, stmt)
		return err
	}
	if err := do(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("cluster: create database: %w", err)
	}
	drop = func(ctx context.Context) error {
		return do(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	dsn, err = withDatabase(adminDSN, name)
	if err != nil {
		_ = drop(ctx)
		return "", nil, err
	}
	return dsn, drop, nil
}

// withDatabase is dsn with its database replaced by name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("cluster: postgres dsn: %w", err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil // keyword/value form: the last dbname wins
}

// NewDatabase creates an empty database on the local test server
// (PostgresDSN) for a test and returns its DSN; t.Cleanup drops it.
func NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, drop, err := CreateDatabase(ctx, PostgresDSN(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil {
			t.Errorf("cluster: drop database of %s: %v", dsn, err)
		}
	})
	return dsn
}

// Postgres is a PostgreSQL cluster of a test's or drill's own: initdb into
// a folder, pg_ctl start and stop on a free loopback port. PostgreSQL
// refuses to run as root, so as root every command runs as user postgres
// (runuser) on a folder that user owns.
type Postgres struct {
	Port    int
	bindir  string
	root    string // owned by the server's user: data, sock, server.log
	runAs   string // "" = the current user
	uid     int
	gid     int
	logPath string // pg_ctl's own output (the server's log is root/server.log)
}

// PostgresOptions configures an own PostgreSQL cluster.
type PostgresOptions struct {
	// Dir is where the cluster's folder "pg" is made; as root it is made
	// readable by the postgres user.
	Dir string
	// LogPath receives initdb's and pg_ctl's output.
	LogPath string
}

// StartPostgres runs initdb under o.Dir and starts the server.
func StartPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	bindir, err := pgBindir()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	logPath := o.LogPath
	if logPath == "" {
		logPath = os.DevNull
	}
	p := &Postgres{bindir: bindir, root: filepath.Join(o.Dir, "pg"), Port: port, logPath: logPath, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("cluster: running as root needs a postgres user to run PostgreSQL as: %w", err)
		}
		p.runAs = "postgres"
		p.uid, _ = strconv.Atoi(u.Uid)
		p.gid, _ = strconv.Atoi(u.Gid)
		// The server's user must reach its folder through ours.
		if err := os.Chmod(o.Dir, 0o755); err != nil {
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
	if err := p.Start(ctx); err != nil {
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
	return "", fmt.Errorf("pg_ctl: %w: neither pg_config --bindir nor /usr/lib/postgresql/*/bin has it", ErrNotInstalled)
}

func pgMajor(bindir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return n
}

func (p *Postgres) data() string { return filepath.Join(p.root, "data") }

// DSN is the connection string of database db on this server.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// run runs one of the cluster's binaries (as the server's user), its output
// appended to the log.
func (p *Postgres) run(ctx context.Context, bin string, args ...string) error {
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
	fmt.Fprintf(f, "==== cluster: %s %s at %s\n", bin, strings.Join(args, " "), time.Now().Format("15:04:05.000"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w (see %s)", bin, strings.Join(args, " "), err, p.logPath)
	}
	return nil
}

// Start starts the server and waits until it accepts connections.
func (p *Postgres) Start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
		p.Port, filepath.Join(p.root, "sock"))
	return p.run(ctx, "pg_ctl", "-D", p.data(), "-o", opts, "-l", filepath.Join(p.root, "server.log"),
		"-w", "-t", "60", "start")
}

// Stop stops the server: mode "fast" disconnects clients and shuts down
// cleanly, "immediate" is a crash (recovery at the next start).
func (p *Postgres) Stop(ctx context.Context, mode string) error {
	return p.run(ctx, "pg_ctl", "-D", p.data(), "-m", mode, "-w", "-t", "60", "stop")
}

// PID is the postmaster's process id (0 when it is not running).
func (p *Postgres) PID() int {
	b, err := os.ReadFile(filepath.Join(p.data(), "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(line))
	return n
}

// CreateDB creates database name.
func (p *Postgres) CreateDB(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// Ready reports whether the server accepts a query.
func (p *Postgres) Ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return false
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx) == nil
}

// Close stops the server (fast, else immediate); a server already stopped
// makes both fail harmlessly.
func (p *Postgres) Close(ctx context.Context) error {
	if err := p.Stop(ctx, "fast"); err != nil {
		if err2 := p.Stop(ctx, "immediate"); err2 != nil {
			return errors.Join(err, err2)
		}
	}
	return nil
}

// CopyServerLog copies the server's own log to dst (the server's user may
// not write where the caller keeps its logs).
func (p *Postgres) CopyServerLog(dst string) {
	if b, err := os.ReadFile(filepath.Join(p.root, "server.log")); err == nil {
		_ = os.WriteFile(dst, b, 0o644)
	}
}

// Bindir is the folder of the PostgreSQL binaries in use.
func (p *Postgres) Bindir() string { return p.bindir }
