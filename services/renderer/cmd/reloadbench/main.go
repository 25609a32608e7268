// Command reloadbench measures what a config change costs on a real NGINX
// at several sizes: render, `nginx -t`, and reload until the new version
// answers. Each size gets N apps × 10 instances as name-based virtual hosts
// on one port; the figures are medians over a few changes of one instance.
//
//	go run ./services/renderer/cmd/reloadbench -sizes 100,1000,10000
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/apply"
	"github.com/orchestry/orchestry/services/renderer/nginx"
	"github.com/orchestry/orchestry/services/renderer/render"
)

func main() {
	sizes := flag.String("sizes", "100,1000,10000", "comma-separated app counts")
	rounds := flag.Int("rounds", 5, "changes measured per size")
	flag.Parse()
	bin, err := nginx.Binary("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%-8s %-10s %12s %12s %12s %12s\n", "apps", "instances", "render", "nginx -t", "reload+live", "total")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bad size %q\n", s)
			os.Exit(2)
		}
		if err := measure(bin, n, *rounds); err != nil {
			fmt.Fprintf(os.Stderr, "apps=%d: %v\n", n, err)
			os.Exit(1)
		}
	}
}

func measure(bin string, n, rounds int) error {
	dir, err := os.MkdirTemp("", "reloadbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	status, err := freeAddr()
	if err != nil {
		return err
	}
	port, err := freeAddr()
	if err != nil {
		return err
	}
	_, p, _ := net.SplitHostPort(port)
	appPort, _ := strconv.Atoi(p)
	prefix := filepath.Join(dir, "nginx")
	sup := nginx.NewSupervisor(bin, prefix, apply.LiveConf(prefix), zerolog.Nop())
	defer func() { _ = sup.Stop(30 * time.Second) }()
	a, err := apply.New(render.Options{Prefix: prefix, StatusListen: status, CertDir: filepath.Join(dir, "certs"), WorkerProcesses: 1},
		sup, 5*time.Minute, zerolog.Nop())
	if err != nil {
		return err
	}
	apps := make([]events.RoutingState, n)
	for i := range apps {
		apps[i] = app(i, appPort)
	}
	ctx := context.Background()
	if r := a.Apply(ctx, apps, apply.Certs{}); r.Err != nil {
		return fmt.Errorf("first apply: %w", r.Err)
	}
	var rs, vs, ls, ts []time.Duration
	for round := range rounds {
		apps[round%n].Instances[0].Port = 20000 + round
		r := a.Apply(ctx, apps, apply.Certs{})
		if r.Err != nil || r.Outcome != events.OutcomeApplied {
			return fmt.Errorf("round %d: %s %v", round, r.Outcome, r.Err)
		}
		rs, vs, ls = append(rs, r.Render), append(vs, r.Validate), append(ls, r.Reload)
		ts = append(ts, r.Render+r.Validate+r.Reload)
	}
	fmt.Printf("%-8d %-10d %12s %12s %12s %12s\n", n, n*10, median(rs), median(vs), median(ls), median(ts))
	return nil
}

func app(i, port int) events.RoutingState {
	name := fmt.Sprintf("app-%05d", i)
	s := events.RoutingState{
		App: events.App{
			Metadata: events.Metadata{Name: name},
			Spec:     events.AppSpec{Networking: events.Networking{ExternalPort: port, Domain: name + ".bench.test"}},
		},
		Revision: 1,
	}
	for j := range 10 {
		s.Instances = append(s.Instances, events.Instance{
			ID: fmt.Sprintf("i%d", j), IP: fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256), Port: 8000 + j,
		})
	}
	return s
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2].Round(100 * time.Microsecond)
}
