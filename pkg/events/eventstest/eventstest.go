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
	dir     string
	secured bool
}

// Start runs a JetStream-enabled NATS server on 127.0.0.1 with its store in
// dir (a fresh t.TempDir() when dir is empty) and stops it when t ends.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	return start(t, dir, nil)
}

// Admin is the user of StartSecured with every permission, the one Connect
// uses.
const Admin = "admin"

// StartSecured is Start with one user per events.Services() identity,
// holding events.PermissionsOf it (password: the name), and Admin with
// every permission; ConnectAs connects as one of them.
func StartSecured(t testing.TB, dir string) *Server {
	t.Helper()
	users := []*server.User{{Username: Admin, Password: Admin}}
	for _, name := range events.Services() {
		p, err := events.PermissionsOf(name)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, &server.User{Username: name, Password: name, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: p.Publish, Deny: p.PublishDeny},
			Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
			Response:  responses(p.AllowResponses),
		}})
	}
	s := start(t, dir, users)
	s.secured = true
	return s
}

func start(t testing.TB, dir string, users []*server.User) *Server {
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
		Users:     users,
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

// ConnectAs opens a connection as user name of a StartSecured server (any
// connection on a Start one), closed when t ends, provisioning nothing.
func (s *Server) ConnectAs(t testing.TB, name string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	if s.secured {
		opts = append(opts, nats.UserInfo(name, name))
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("nats connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Connect opens a client connection closed when t ends, and provisions
// every stream and bucket.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := s.ConnectAs(t, Admin)
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

// responses is the allow_responses permission of an identity that answers
// requests (events.Permissions.AllowResponses): one reply per request, to
// the requester's reply subject, within the server's default expiry.
func responses(allow bool) *server.ResponsePermission {
	if !allow {
		return nil
	}
	return &server.ResponsePermission{MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS, Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION}
}
