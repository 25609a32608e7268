package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Handler answers every request with id, as the demo backends do.
func Handler(id string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Instance", id)
		fmt.Fprintf(w, "hello from %s (%s %s)\n", id, r.Method, r.URL.Path)
	})
	return mux
}

// Serve runs one demo backend (a container of the compose stack) on
// listen until ctx ends. With apiURL set it declares the app "demo" on
// appPort when it is missing and registers itself as instance id at its own
// address, retrying until the API accepts.
func Serve(ctx context.Context, listen, id, apiURL, token string, appPort int, logf func(string, ...any)) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: Handler(id), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if apiURL != "" {
		go func() {
			for ctx.Err() == nil {
				err := selfRegister(ctx, ln.Addr().(*net.TCPAddr).Port, id, apiURL, token, appPort)
				if err == nil {
					logf("registered %s with %s", id, apiURL)
					return
				}
				logf("register %s: %v (retrying)", id, err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func selfRegister(ctx context.Context, port int, id, apiURL, token string, appPort int) error {
	ip, err := ownIP()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := call(ctx, http.MethodGet, apiURL+"/v1/apps/demo", token, "", nil); err != nil {
		if err := call(ctx, http.MethodPut, apiURL+"/v1/apps/demo", token, "application/yaml", []byte(App(appPort))); err != nil {
			return err
		}
	}
	body := fmt.Appendf(nil, `{"id":%q,"ip":%q,"port":%d}`, id, ip, port)
	return call(ctx, http.MethodPost, apiURL+"/v1/apps/demo/instances", token, "application/json", body)
}

// ownIP is the first non-loopback IPv4 address of this host (container).
func ownIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("no IPv4 address")
}
