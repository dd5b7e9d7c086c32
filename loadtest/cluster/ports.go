package cluster

import (
	"errors"
	"net"
	"strconv"
	"time"
)

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// busOffset is how far above its client port a Redis Cluster node listens
// for the cluster bus.
const busOffset = 10000

// freeClusterPort returns a free port p ≤ 55535 whose bus port p+10000 is
// free too, as a Redis Cluster node needs both.
func freeClusterPort() (int, error) {
	for range 200 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		if p+busOffset > 65535 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+busOffset))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("cluster: no free port pair (p, p+10000) found")
}

// addr is 127.0.0.1:port.
func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// TCPOpen reports whether addr accepts a connection.
func TCPOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
