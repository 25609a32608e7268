package main

// Starting the NGINXes and asking them over HTTP.

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/orchestry/orchestry/services/renderer/nginx"
)

// start tests the config with `nginx -t` and starts NGINX on it.
func start(ctx context.Context, s *nginx.Supervisor, conf string) error {
	if err := s.Test(ctx, conf); err != nil {
		return err
	}
	return s.Start()
}

// workersOf waits (bounded) until the master has want workers and returns
// their pids.
func workersOf(s *nginx.Supervisor, want int) ([]int, error) {
	for range 100 {
		if ws, ok := s.AcceptingWorkers(); ok && len(ws) == want {
			return ws, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("NGINX did not start %d workers", want)
}

var client = &http.Client{Timeout: 2 * time.Second}

// statusClient opens one connection per request, so the backends' accepts
// counter moves by exactly one per reading.
var statusClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

var reAccepts = regexp.MustCompile(`server accepts handled requests\s+(\d+)`)

// accepts reads the connections the backends have accepted so far from
// their stub_status.
func accepts(ctx context.Context, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("backend status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, fmt.Errorf("backend status: %w", err)
	}
	m := reAccepts.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("backend status: no accepts counter in %q", body)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// get fetches url and returns the status, X-Backend header and body.
func get(ctx context.Context, url string) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, resp.Header.Get("X-Backend"), string(body), err
}

// waitOK waits (at most 10 s) until url answers 200 "ok\n".
func waitOK(ctx context.Context, url string) error {
	var last error
	for range 200 {
		code, _, body, err := get(ctx, url)
		switch {
		case err != nil:
			last = err
		case code == http.StatusOK && body == "ok\n":
			return nil
		default:
			last = fmt.Errorf("status %d, body %q", code, body)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not answering 200 ok: %w", url, last)
}

// checkSpread checks that the config answers with the backends' body and
// sends requests to all of them.
func checkSpread(ctx context.Context, port int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := waitOK(ctx, url); err != nil {
		return err
	}
	seen := map[string]bool{}
	for range 4 * backendCount {
		code, backend, body, err := get(ctx, url)
		if err != nil {
			return err
		}
		if code != http.StatusOK || body != "ok\n" {
			return fmt.Errorf("status %d, body %q", code, body)
		}
		seen[backend] = true
	}
	if len(seen) != backendCount {
		return fmt.Errorf("requests reached %d backends, want %d", len(seen), backendCount)
	}
	return nil
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
