package main

// Caddy, the peer: started from the binary bench/caddy builds, pinned like
// the NGINX under test, stopped on exit.

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed caddy.conf
var caddyConf string

// caddyVersion is the Caddy module bench/caddy pins.
const caddyVersion = "v2.11.9"

// caddyProc is a running Caddy.
type caddyProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startCaddy writes caddy.conf under prefix and runs Caddy on it, pinned
// to the CPUs of the config under test, with GOMAXPROCS = -workers.
func startCaddy(ctx context.Context, c config, prefix string, port int, backends []string) (*caddyProc, error) {
	if err := os.MkdirAll(filepath.Join(prefix, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("caddy prefix: %w", err)
	}
	conf, err := writeTemplate(prefix, caddyConf, map[string]any{"Prefix": prefix, "Port": port, "Backends": backends})
	if err != nil {
		return nil, fmt.Errorf("caddy config: %w", err)
	}
	bin, err := filepath.Abs(c.caddyBin)
	if err != nil {
		return nil, fmt.Errorf("caddy: %w", err)
	}
	name, args := bin, []string{"run", "--config", conf, "--adapter", "caddyfile"}
	if c.pin {
		args = append([]string{"-c", c.frontCPUs, bin}, args...)
		name = "taskset"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(c.workers), "HOME="+prefix,
		"XDG_DATA_HOME="+filepath.Join(prefix, "data"), "XDG_CONFIG_HOME="+filepath.Join(prefix, "data"))
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	// Its own process group: Ctrl-C reaches this process, which stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start caddy: %w", err)
	}
	p := &caddyProc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	if err := waitOK(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
		p.stop()
		return nil, fmt.Errorf("caddy not serving: %w; its log:\n%s", err, tail(logBuf.String()))
	}
	return p, nil
}

// stop ends Caddy (SIGTERM, then SIGKILL after 5 s).
func (p *caddyProc) stop() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *caddyProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// frontPids are the processes whose CPU time counts as the config under
// test's: NGINX's workers, or Caddy (all its threads).
func (v *variant) frontPids() []int {
	if v.caddyP != nil {
		return []int{v.caddyP.cmd.Process.Pid}
	}
	ws, _ := v.sup.AcceptingWorkers()
	return ws
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-20, 0):], "\n")
}
