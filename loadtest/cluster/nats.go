package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSOptions configures a nats-server or a NATS cluster.
type NATSOptions struct {
	// Dir holds the JetStream store, one folder per node.
	Dir string
	// LogDir, if set, receives nats-<name>.log per node.
	LogDir string
	// Bin is the nats-server executable; "" builds the pinned one
	// (NATSServerBinary).
	Bin string
}

// NATS is one nats-server with JetStream on 127.0.0.1. Kill and Restart run
// it again on the same ports and store.
type NATS struct {
	*Proc
	Port        int
	ClusterPort int    // 0 for a single server
	URL         string // nats://127.0.0.1:Port
}

// NATSCluster is nats-servers routed to each other with JetStream on, so
// streams can be replicated (R3 on three nodes).
type NATSCluster struct {
	Nodes []*NATS
}

// StartNATS starts a single nats-server with JetStream on a free port and
// waits until JetStream answers.
func StartNATS(ctx context.Context, o NATSOptions) (*NATS, error) {
	c, err := startNATS(ctx, o, 1)
	if err != nil {
		return nil, err
	}
	return c.Nodes[0], nil
}

// StartNATSCluster starts n nats-servers routed to each other and waits
// until every node's JetStream answers (a meta leader is elected).
func StartNATSCluster(ctx context.Context, o NATSOptions, n int) (*NATSCluster, error) {
	if n < 2 {
		return nil, fmt.Errorf("cluster: a NATS cluster needs 2 or more nodes, got %d", n)
	}
	return startNATS(ctx, o, n)
}

func startNATS(ctx context.Context, o NATSOptions, n int) (_ *NATSCluster, err error) {
	bin := o.Bin
	if bin == "" {
		if bin, err = NATSServerBinary(ctx); err != nil {
			return nil, err
		}
	}
	c := &NATSCluster{}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	var routes []string
	for range n {
		node := &NATS{}
		if node.Port, err = FreePort(); err != nil {
			return nil, err
		}
		if n > 1 {
			if node.ClusterPort, err = FreePort(); err != nil {
				return nil, err
			}
			routes = append(routes, "nats://"+addr(node.ClusterPort))
		}
		node.URL = "nats://" + addr(node.Port)
		c.Nodes = append(c.Nodes, node)
	}
	for i, node := range c.Nodes {
		name := "nats-" + strconv.Itoa(i+1)
		store := filepath.Join(o.Dir, name)
		if err := os.MkdirAll(store, 0o755); err != nil {
			return nil, err
		}
		args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(node.Port), "-js", "-sd", store, "-n", name}
		if n > 1 {
			args = append(args, "--cluster_name", "seckill", "-cluster", routes[i],
				"-routes", strings.Join(routes, ","))
		}
		node.Proc = &Proc{Name: name, Bin: bin, Args: args, Dir: o.Dir}
		if o.LogDir != "" {
			node.LogPath = filepath.Join(o.LogDir, name+".log")
		}
		if err := node.Start(); err != nil {
			return nil, err
		}
	}
	for _, node := range c.Nodes {
		if err := waitProc(ctx, node.Proc, 60*time.Second, node.Ready); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// NewNATS starts a nats-server private to the test; t.Cleanup kills it.
func NewNATS(t testing.TB) *NATS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // may build nats-server
	defer cancel()
	n, err := StartNATS(ctx, NATSOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Kill() })
	return n
}

// NewNATSCluster starts an n-node NATS cluster private to the test;
// t.Cleanup kills every node.
func NewNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // may build nats-server
	defer cancel()
	c, err := StartNATSCluster(ctx, NATSOptions{Dir: t.TempDir()}, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Restart starts the server if it is not running and waits until its
// JetStream answers.
func (n *NATS) Restart(ctx context.Context) error {
	if err := n.Start(); err != nil && !errors.Is(err, ErrRunning) {
		return err
	}
	return waitProc(ctx, n.Proc, 60*time.Second, n.Ready)
}

// Ready reports whether the server takes a connection and its JetStream
// answers an account-info request (in a cluster: a meta leader exists).
func (n *NATS) Ready(ctx context.Context) bool {
	nc, err := nats.Connect(n.URL, nats.Timeout(500*time.Millisecond), nats.NoReconnect())
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// URLs is every node's client URL, comma-separated, as nats.Connect takes.
func (c *NATSCluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

// Close kills every node.
func (c *NATSCluster) Close() {
	for _, n := range c.Nodes {
		if n.Proc != nil {
			_ = n.Kill()
		}
	}
}

// Addr is the client address, 127.0.0.1:Port.
func (n *NATS) Addr() string { return addr(n.Port) }
