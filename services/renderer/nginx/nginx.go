// Package nginx runs NGINX as a supervised child process: it tests configs
// with `nginx -t`, starts the master, reloads it with SIGHUP, stops it
// gracefully with SIGQUIT and starts it again when it dies unexpectedly.
// Everything NGINX writes (pid, logs, temp files) lives under one prefix
// directory, so it runs as any user without touching /etc/nginx.
package nginx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Binary finds the nginx executable: path itself when it names a file,
// else a PATH lookup, else the Debian location /usr/sbin/nginx (which is
// not on every user's PATH).
func Binary(path string) (string, error) {
	if path == "" {
		path = "nginx"
	}
	if strings.Contains(path, "/") {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("nginx binary %s: %w", path, err)
		}
		return path, nil
	}
	if p, err := exec.LookPath(path); err == nil {
		return p, nil
	}
	if path == "nginx" {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx", nil
		}
	}
	return "", fmt.Errorf("nginx binary %q not found: install it (apt-get install -y nginx-light) or set ORCHESTRY_NGINX_BIN", path)
}

// Supervisor owns one NGINX master process.
type Supervisor struct {
	bin    string
	prefix string
	conf   string // the config path nginx is started with (a stable symlink path)
	log    zerolog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current process has exited
	stopping bool
	restarts int
}

// NewSupervisor prepares a supervisor for nginx binary bin, with its prefix
// directory and the main config path it is started with.
func NewSupervisor(bin, prefix, conf string, log zerolog.Logger) *Supervisor {
	return &Supervisor{bin: bin, prefix: prefix, conf: conf, log: log.With().Str("component", "nginx").Logger()}
}

// Test runs `nginx -t` on the config at conf and returns NGINX's own
// message when it fails.
func (s *Supervisor) Test(ctx context.Context, conf string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.bin, "-t", "-q", "-p", s.prefix+"/", "-e", s.errorLog(), "-c", conf).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("nginx -t: %s", msg)
	}
	return nil
}

// errorLog is where NGINX logs before it has read its config (-e), instead
// of the compiled-in /var/log/nginx path an unprivileged user cannot open.
func (s *Supervisor) errorLog() string { return filepath.Join(s.prefix, "logs", "error.log") }

// Running reports whether the master process is up.
func (s *Supervisor) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Start starts the master process and a watcher that restarts it, with
// back-off, whenever it exits without Stop being called.
func (s *Supervisor) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	s.stopping = false
	return s.startLocked()
}

func (s *Supervisor) startLocked() error {
	if err := os.MkdirAll(filepath.Join(s.prefix, "logs"), 0o755); err != nil {
		return fmt.Errorf("nginx prefix: %w", err)
	}
	cmd := exec.Command(s.bin, "-p", s.prefix+"/", "-e", s.errorLog(), "-c", s.conf)
	// Its own process group: a Ctrl-C on the terminal reaches the
	// supervisor, which then stops NGINX gracefully.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("nginx stderr: %w", err)
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	s.exited = exited
	s.log.Info().Int("pid", cmd.Process.Pid).Str("conf", s.conf).Msg("nginx started")
	go s.relay(stderr)
	go s.watch(cmd, exited)
	return nil
}

// relay turns NGINX's stderr lines into log events.
func (s *Supervisor) relay(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s.log.Warn().Str("stderr", sc.Text()).Msg("nginx says")
	}
}

func (s *Supervisor) watch(cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Closed once the state below is updated, so that Stop, returning on
	// it, is followed by Running() == false.
	defer close(exited)
	if s.cmd != cmd {
		return
	}
	s.cmd = nil
	if s.stopping {
		s.log.Info().Msg("nginx stopped")
		return
	}
	s.restarts++
	delay := min(time.Duration(1<<min(s.restarts, 6))*100*time.Millisecond, 5*time.Second)
	s.log.Error().Err(err).Int("restarts", s.restarts).Dur("in", delay).Msg("nginx exited unexpectedly; restarting")
	time.AfterFunc(delay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopping || s.cmd != nil {
			return
		}
		if err := s.startLocked(); err != nil {
			s.log.Error().Err(err).Msg("nginx restart failed")
		}
	})
}

// Restarts counts unexpected exits since the supervisor was made.
func (s *Supervisor) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Pid returns the master's pid, or 0 when it is not running.
func (s *Supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// ErrNotRunning is returned by Reload when there is no master to signal.
var ErrNotRunning = errors.New("nginx is not running")

// Reload asks the master to re-read its config (SIGHUP). NGINX starts new
// workers and lets old ones finish their requests, so nothing is dropped.
func (s *Supervisor) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return ErrNotRunning
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload nginx: %w", err)
	}
	return nil
}

// Stop shuts NGINX down gracefully (SIGQUIT: finish in-flight requests),
// and kills it if it has not exited within grace.
func (s *Supervisor) Stop(grace time.Duration) error {
	s.mu.Lock()
	s.stopping = true
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return fmt.Errorf("nginx did not stop within %s; killed", grace)
	}
}
