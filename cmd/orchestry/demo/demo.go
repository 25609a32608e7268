// Package demo runs the demo of `make run`: three small HTTP backends on
// loopback, registered as instances of the app "demo" through the REST API,
// exactly as a user would.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Backend is one demo instance: it answers every request with its id.
type Backend struct {
	ID   string
	Addr *net.TCPAddr
	srv  *http.Server
}

// StartBackends starts n backends on 127.0.0.1, on free ports.
func StartBackends(n int) ([]*Backend, error) {
	var out []*Backend
	for i := 1; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			StopBackends(out)
			return nil, fmt.Errorf("demo backend: %w", err)
		}
		id := "demo-" + strconv.Itoa(i)
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Instance", id)
			fmt.Fprintf(w, "hello from %s (%s %s)\n", id, r.Method, r.URL.Path)
		})
		b := &Backend{ID: id, Addr: ln.Addr().(*net.TCPAddr), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
		go func() { _ = b.srv.Serve(ln) }()
		out = append(out, b)
	}
	return out, nil
}

// StopBackends shuts the backends down.
func StopBackends(bs []*Backend) {
	for _, b := range bs {
		_ = b.srv.Close()
	}
}

// App is the demo app file, as a user would write it.
func App(port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: App
metadata:
  name: demo
  labels:
    purpose: demo
spec:
  networking:
    external_port: %d
    max_body_size: 1m
    timeout: 30
    headers:
      X-Served-By: orchestry
  lb_method: round_robin
healthCheck:
  path: /
  protocol: HTTP
  periodSeconds: 5
`, port)
}

// Register declares the demo app on port and its backends through the API
// at apiURL with token.
func Register(ctx context.Context, apiURL, token string, port int, bs []*Backend) error {
	if err := call(ctx, http.MethodPut, apiURL+"/v1/apps/demo", token, "application/yaml", []byte(App(port))); err != nil {
		return err
	}
	for _, b := range bs {
		body, _ := json.Marshal(map[string]any{"id": b.ID, "ip": b.Addr.IP.String(), "port": b.Addr.Port})
		if err := call(ctx, http.MethodPost, apiURL+"/v1/apps/demo/instances", token, "application/json", body); err != nil {
			return err
		}
	}
	return nil
}

func call(ctx context.Context, method, url, token, ctype string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	return nil
}
