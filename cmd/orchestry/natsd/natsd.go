// Package natsd runs the NATS server with JetStream embedded in the
// all-in-one binary, with its store under the data directory and one user
// per Orchestry identity.
package natsd

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/orchestry/orchestry/pkg/events"
)

// Start runs a JetStream-enabled NATS server listening on listen
// ("host:port"; port 0 picks a free one) with its store in storeDir. Its
// users are the identities of events.Services(), each with the password
// passwords gives it and the permissions events.PermissionsOf gives it;
// every identity needs a password.
func Start(listen, storeDir string, passwords map[string]string) (*server.Server, error) {
	var users []*server.User
	for _, name := range events.Services() {
		pw := passwords[name]
		if pw == "" {
			return nil, fmt.Errorf("nats server: no password for %s", name)
		}
		p, err := events.PermissionsOf(name)
		if err != nil {
			return nil, fmt.Errorf("nats server: %w", err)
		}
		users = append(users, &server.User{Username: name, Password: pw, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: p.Publish, Deny: p.PublishDeny},
			Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
			Response:  responses(p.AllowResponses),
		}})
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen %q: %w", listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "orchestry",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		Users:      users,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server on %s not ready within 15s", listen)
	}
	return s, nil
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
