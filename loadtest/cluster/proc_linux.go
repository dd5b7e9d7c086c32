package cluster

import "syscall"

// childAttr makes a child die with its parent, so an interrupted test or
// drill leaves no redis-server, nats-server or seckill behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
