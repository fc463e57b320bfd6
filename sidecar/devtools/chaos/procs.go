package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// serveProc is one `keapsync serve` subprocess under a supervisor that restarts it when it
// dies, as systemd's Restart=always would. The harness SIGKILLs it for real: no deferred
// cleanup, no graceful drain, exactly what a crash or an OOM kill leaves behind.
type serveProc struct {
	name string
	bin  string
	args []string
	addr string // its --listen address
	out  *os.File
	log  *slog.Logger

	mu        sync.Mutex
	cmd       *exec.Cmd
	up        bool      // answered /healthz since it last started
	downUntil time.Time // the supervisor keeps it down until then (takeover windows)
	starts    int
	kills     int
	exits     []string // how each run ended, for the report
}

// supervise runs the process until ctx ends, restarting it after each exit.
func (p *serveProc) supervise(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		cmd := exec.Command(p.bin, p.args...)
		cmd.Stdout, cmd.Stderr = p.out, p.out
		cmd.SysProcAttr = dieWithUs()
		if err := cmd.Start(); err != nil {
			p.log.Warn("start serve", "serve", p.name, "err", err)
		} else {
			p.mu.Lock()
			p.cmd, p.up = cmd, false
			p.starts++
			p.mu.Unlock()
			exited := make(chan struct{})
			go p.watchHealth(ctx, cmd, exited)
			go func() {
				<-ctx.Done()
				_ = cmd.Process.Kill() // the soak is over; the supervisor's own child, by pid
			}()
			err := cmd.Wait()
			close(exited)
			p.mu.Lock()
			p.cmd, p.up = nil, false
			p.exits = append(p.exits, fmt.Sprint(err))
			p.mu.Unlock()
			p.log.Info("serve exited", "serve", p.name, "err", err)
		}
		// A short pause like a supervisor's RestartSec, or longer while a takeover is staged
		// (read again after the pause: a takeover may be staged while the process is down).
		sleepCtx(ctx, 300*time.Millisecond)
		for ctx.Err() == nil {
			p.mu.Lock()
			wait := time.Until(p.downUntil)
			p.mu.Unlock()
			if wait <= 0 {
				break
			}
			sleepCtx(ctx, wait)
		}
	}
}

func (p *serveProc) watchHealth(ctx context.Context, cmd *exec.Cmd, exited <-chan struct{}) {
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-ctx.Done():
			return
		case <-exited:
			return
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get("http://" + p.addr + "/healthz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			p.mu.Lock()
			if p.cmd == cmd {
				p.up = true
			}
			p.mu.Unlock()
			return
		}
	}
}

// kill SIGKILLs the running process, keeping it down for at least hold; it reports whether
// there was one to kill.
func (p *serveProc) kill(hold time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.downUntil = time.Now().Add(hold)
	if p.cmd == nil || p.cmd.Process == nil {
		return false
	}
	p.up = false
	p.kills++
	_ = p.cmd.Process.Kill()
	return true
}

// dieWithUs makes a child die when the harness does (a test timeout, a SIGKILL of the
// harness itself): a serve left behind would spin against a database that is gone.
func dieWithUs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// dump asks the running process for its goroutine stacks (SIGQUIT: the Go runtime prints them
// to the log and exits), to see where a serve that stopped making progress is waiting.
func (p *serveProc) dump() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	}
}

func (p *serveProc) isUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

// waitUp waits (bounded) until the process answers /healthz.
func (p *serveProc) waitUp(ctx context.Context, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for !p.isUp() {
		if time.Now().After(deadline) {
			return fmt.Errorf("serve %s did not answer /healthz within %s (log: %s)", p.name, bound, p.out.Name())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// proxy stands where a load balancer would: Keap's hook URL names it, and it forwards to
// whichever serve is up, so hooks keep a stable address across kills and the takeover.
type proxy struct {
	serves []*serveProc
	rr     atomic.Uint64
	byName map[string]*httputil.ReverseProxy
}

func newProxy(serves []*serveProc) *proxy {
	p := &proxy{serves: serves, byName: map[string]*httputil.ReverseProxy{}}
	for _, s := range serves {
		target := &url.URL{Scheme: "http", Host: s.addr}
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.ErrorLog = nil
		rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "backend "+s.name+": "+err.Error(), http.StatusBadGateway)
		}
		p.byName[s.name] = rp
	}
	return p
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := uint64(len(p.serves))
	start := p.rr.Add(1)
	for i := uint64(0); i < n; i++ {
		s := p.serves[(start+i)%n]
		if s.isUp() {
			p.byName[s.name].ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, "no keapsync serve is up", http.StatusServiceUnavailable)
}
