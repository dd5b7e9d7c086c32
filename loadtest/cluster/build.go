package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// modulePath is the module whose binaries this package builds.
const modulePath = "github.com/seckill/seckill"

// ModuleRoot finds the seckill module root from the working directory up,
// so `go run ./loadtest` (root) and `go test` (any package folder) build the
// same tree.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(f)
			ok := sc.Scan() && strings.TrimSpace(sc.Text()) == "module "+modulePath
			f.Close()
			if ok {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cluster: not inside the " + modulePath + " module")
		}
		dir = parent
	}
}

// Build runs `go build -o out pkg` in the module root; pkg is a package
// path of this module ("./cmd/seckill") or of a dependency go.mod pins
// ("github.com/nats-io/nats-server/v2").
func Build(ctx context.Context, pkg, out string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s %s: %w\n%s", out, pkg, err, b)
	}
	return nil
}

// builds holds the binaries built by this process, once each.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// binary builds pkg once per process into a temp folder shared by every
// binary and returns the executable's path. A failed build is not retried.
func binary(ctx context.Context, pkg, name string) (string, error) {
	builds.mu.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*build{}
	}
	if builds.dir == "" {
		d, err := os.MkdirTemp("", "seckill-cluster-bin-")
		if err != nil {
			builds.mu.Unlock()
			return "", err
		}
		builds.dir = d
	}
	b := builds.bins[pkg]
	if b == nil {
		b = &build{path: filepath.Join(builds.dir, name)}
		builds.bins[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.err = Build(ctx, pkg, b.path) })
	return b.path, b.err
}

// SeckillBinary builds ./cmd/seckill from this tree once per process.
func SeckillBinary(ctx context.Context) (string, error) {
	return binary(ctx, "./cmd/seckill", "seckill")
}

// NATSServerBinary builds nats-server at the version go.mod pins, once per
// process.
func NATSServerBinary(ctx context.Context) (string, error) {
	return binary(ctx, "github.com/nats-io/nats-server/v2", "nats-server")
}

// RemoveBinaries deletes what SeckillBinary and NATSServerBinary built; a
// TestMain or a drill calls it once at the end.
func RemoveBinaries() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	builds.dir, builds.bins = "", nil
}
