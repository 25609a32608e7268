package nginx

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func requireNginx(t *testing.T) string {
	t.Helper()
	bin, err := Binary("")
	if err == nil {
		return bin
	}
	if os.Getenv("ORCHESTRY_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("nginx is required (ORCHESTRY_REQUIRE_INTEGRATION=1): %v", err)
	}
	t.Skipf("skipping: %v", err)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeConf writes a minimal config answering body on port.
func writeConf(t *testing.T, prefix, conf string, port int, body string) {
	t.Helper()
	c := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  server { listen 127.0.0.1:%[2]d; location / { return 200 "%[3]s"; } }
}
`, prefix, port, body)
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitBody polls port until it answers want (at most 10s).
func waitBody(t *testing.T, port int, want string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if last = string(b); last == want {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("port %d answers %q, want %q", port, last, want)
}

func TestSupervisorStartsReloadsRestartsAfterACrashAndStops(t *testing.T) {
	bin := requireNginx(t)
	prefix := t.TempDir()
	conf := filepath.Join(prefix, "nginx.conf")
	port := freePort(t)
	writeConf(t, prefix, conf, port, "one")
	s := NewSupervisor(bin, prefix, conf, zerolog.New(zerolog.NewTestWriter(t)))
	if err := s.Test(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(5 * time.Second) })
	waitBody(t, port, "one")
	before, ok := s.AcceptingWorkers()
	if !ok || len(before) == 0 {
		t.Fatalf("accepting workers of the running nginx: %v %v", before, ok)
	}

	writeConf(t, prefix, conf, port, "two")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	waitBody(t, port, "two")
	// The old workers stop accepting; new ones do.
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, _ := s.AcceptingWorkers()
		if len(after) > 0 && !slices.ContainsFunc(after, func(p int) bool { return slices.Contains(before, p) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after reload, accepting workers %v still include old ones %v", after, before)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A crash of the master brings a new one up on the same config.
	pid := s.Pid()
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for s.Pid() == pid || s.Pid() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nginx was not restarted within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitBody(t, port, "two")
	if s.Restarts() != 1 {
		t.Fatalf("restarts = %d, want 1", s.Restarts())
	}

	if err := s.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Fatal("port still answers after Stop")
	}
}

func TestTestReportsNginxsOwnMessage(t *testing.T) {
	bin := requireNginx(t)
	prefix := t.TempDir()
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte("events {}\nhttp { server { listen 127.0.0.1:1; bogus_directive on; } }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	s := NewSupervisor(bin, prefix, conf, zerolog.Nop())
	err := s.Test(context.Background(), conf)
	if err == nil || !strings.Contains(err.Error(), "bogus_directive") {
		t.Fatalf("want nginx's error naming the directive, got %v", err)
	}
}
