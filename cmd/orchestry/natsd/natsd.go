// Package natsd runs the NATS server with JetStream embedded in the
// all-in-one binary, with its store under the data directory.
package natsd

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a JetStream-enabled NATS server listening on listen
// ("host:port"; port 0 picks a free one) with its store in storeDir. Every
// client, in-process ones included, must present token.
func Start(listen, storeDir, token string) (*server.Server, error) {
	if token == "" {
		return nil, fmt.Errorf("nats server: empty token")
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
		ServerName:    "orchestry",
		Host:          host,
		Port:          port,
		JetStream:     true,
		StoreDir:      storeDir,
		NoSigs:        true,
		Authorization: token,
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
