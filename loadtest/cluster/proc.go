package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ErrRunning is returned by Start when the process is already running.
var ErrRunning = errors.New("cluster: already running")

// Proc is one child process that a test or drill owns: started, killed,
// paused and started again with the same command line. Its output goes to
// Out when set, else it is appended to LogPath (one file across restarts,
// so a restart's lines follow the crash's), else it is discarded.
//
// Set the exported fields before the first Start; they are read on every
// Start, so a caller may change Env or Args between runs.
type Proc struct {
	Name    string
	Bin     string
	Args    []string
	Env     []string // the whole environment; nil means this process's
	Dir     string   // working directory
	LogPath string
	Out     io.Writer

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process exited
	waitErr error
}

// Start starts the process (again). It fails with ErrRunning if the process
// is still running.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("%s: %w", p.Name, ErrRunning)
	}
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Env, cmd.Dir = p.Env, p.Dir
	cmd.SysProcAttr = childAttr()
	var f *os.File
	switch {
	case p.Out != nil:
		cmd.Stdout, cmd.Stderr = p.Out, p.Out
	case p.LogPath != "":
		var err error
		if f, err = os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(f, "==== cluster: start %s at %s\n", p.Name, time.Now().Format("15:04:05.000"))
		// An *os.File, not a pipe: Wait never waits on a grandchild holding it.
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if f != nil {
			f.Close()
		}
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	p.cmd, p.done, p.waitErr = cmd, done, nil
	return nil
}

// PID is the current (or last) process id, 0 when none was started.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Exited returns a channel closed when the current process has exited
// (already closed when none runs).
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return p.done
}

// Running reports whether the current process has not exited yet.
func (p *Proc) Running() bool { return !isClosed(p.Exited()) }

// ExitCode is the last run's exit code once it exited: -1 while it runs or
// when a signal ended it, with the error of exec's Wait if it was not an
// exit status.
func (p *Proc) ExitCode() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !isClosed(p.done) {
		return -1, errors.New("cluster: " + p.Name + " has not exited")
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode(), nil
	}
	if p.waitErr != nil {
		return -1, p.waitErr
	}
	return 0, nil
}

// Signal sends sig to the current process; a process already gone is not
// an error.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isClosed(done) {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, err)
	}
	return nil
}

// signalWait sends sig and waits up to within for the exit; a process still
// running then is killed and the error says so.
func (p *Proc) signalWait(sig syscall.Signal, within time.Duration) error {
	if err := p.Signal(sig); err != nil {
		return err
	}
	done := p.Exited()
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	}
	_ = p.Signal(syscall.SIGKILL)
	<-done
	return fmt.Errorf("%s: still running %v after %v; killed", p.Name, within, sig)
}

// Kill is a crash: SIGKILL (which also ends a paused process), then wait
// for the exit.
func (p *Proc) Kill() error { return p.signalWait(syscall.SIGKILL, 10*time.Second) }

// Stop is a clean stop: SIGTERM (after SIGCONT, so a paused process can
// act on it), at most within, then SIGKILL.
func (p *Proc) Stop(within time.Duration) error {
	_ = p.Signal(syscall.SIGCONT)
	return p.signalWait(syscall.SIGTERM, within)
}

// Pause freezes the process (SIGSTOP): it keeps its sockets but answers
// nothing, as a process stuck in a long GC pause or on a dead disk would.
func (p *Proc) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (p *Proc) Resume() error { return p.Signal(syscall.SIGCONT) }

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
