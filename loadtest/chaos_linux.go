package main

import "syscall"

// childAttr makes a child die with the chaos run, so an interrupted run
// leaves no redis-server, nats-server or seckill behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
