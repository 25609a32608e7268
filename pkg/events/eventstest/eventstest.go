// Package eventstest runs a real, embedded NATS server with JetStream for
// tests, with every Orchestry stream and bucket provisioned, the way httptest
// runs a real HTTP server.
package eventstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

// Server is an embedded NATS server on a random loopback port.
type Server struct {
	*server.Server
	dir string
}

// Start runs a JetStream-enabled NATS server on 127.0.0.1 with its store in
// dir (a fresh t.TempDir() when dir is empty) and stops it when t ends.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  dir,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(s.Shutdown)
	return &Server{Server: s, dir: dir}
}

// Connect opens a client connection closed when t ends, and provisions
// every stream and bucket.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := events.Provision(ctx, js, 1); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return nc, js
}
