package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/orchestry/orchestry/cmd/orchestry/demo"
	"github.com/orchestry/orchestry/cmd/orchestry/natsconf"
	"github.com/orchestry/orchestry/pkg/events"
)

// natsConfigMain is `orchestry nats-config`: it writes the nats-server
// configuration of a JetStream cluster with one user per identity
// (events.PermissionsOf), the password of identity <name> read from
// ORCHESTRY_NATS_PASSWORD_<NAME>, stored as a bcrypt hash.
func natsConfigMain(args []string) int {
	fs := flag.NewFlagSet("nats-config", flag.ExitOnError)
	out := fs.String("o", "-", "output file (- for standard output)")
	cluster := fs.String("cluster", "orchestry", "cluster name; empty for a single server")
	routes := fs.String("routes", "nats://nats-1:6222,nats://nats-2:6222,nats://nats-3:6222", "comma-separated route URLs of every server")
	listen := fs.String("listen", "0.0.0.0:4222", "client listen address")
	clusterListen := fs.String("cluster-listen", "0.0.0.0:6222", "route listen address")
	httpAddr := fs.String("http", "0.0.0.0:8222", "monitoring listen address; empty for none")
	store := fs.String("store", "/data/jetstream", "JetStream store directory")
	_ = fs.Parse(args)
	pw := map[string]string{}
	for _, name := range events.Services() {
		pw[name] = os.Getenv("ORCHESTRY_NATS_PASSWORD_" + strings.ToUpper(name))
	}
	var rs []string
	if *routes != "" {
		rs = strings.Split(*routes, ",")
	}
	text, err := natsconf.Render(natsconf.Options{Listen: *listen, HTTP: *httpAddr, StoreDir: *store,
		ClusterName: *cluster, ClusterListen: *clusterListen, Routes: rs, Passwords: pw})
	if err != nil {
		fmt.Fprintln(os.Stderr, err, "(set ORCHESTRY_NATS_PASSWORD_<IDENTITY> for each of", strings.Join(events.Services(), ", ")+")")
		return 1
	}
	if *out == "-" {
		fmt.Print(text)
		return 0
	}
	// Only bcrypt hashes: readable by the NATS container's user.
	if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// demoMain is `orchestry demo`: one demo backend that registers itself
// through the REST API (ORCHESTRY_API_TOKEN) as an instance of app "demo".
func demoMain(args []string) int {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	listen := fs.String("listen", "0.0.0.0:9000", "listen address")
	id := fs.String("id", envOr("ORCHESTRY_DEMO_ID", "demo-1"), "instance id")
	api := fs.String("api", os.Getenv("ORCHESTRY_DEMO_API"), "routing API URL to register with; empty registers nothing")
	port := fs.Int("app-port", 8080, "external_port of the demo app when it has to be declared")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	if err := demo.Serve(ctx, *listen, *id, *api, os.Getenv("ORCHESTRY_API_TOKEN"), *port, logf); err != nil {
		logf("demo: %v", err)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
