package events

import "github.com/nats-io/nats.go"

// NATSClient is how a service run on its own reaches NATS, read from the
// environment (caarlos0/env tags).
type NATSClient struct {
	URL string `env:"ORCHESTRY_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// Token is sent when set and User is not (an all-in-one's embedded
	// server, or a server with a token).
	Token string `env:"ORCHESTRY_NATS_TOKEN"`
	// User and Password log in as the service's own NATS user
	// (PermissionsOf); when User is set the token is not sent.
	User     string `env:"ORCHESTRY_NATS_USER"`
	Password string `env:"ORCHESTRY_NATS_PASSWORD"`
}

// Connect connects under the client name, reconnecting without end and
// retrying the first connection too (a service may start before its NATS
// server).
func (c NATSClient) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	} else if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	return nats.Connect(c.URL, opts...)
}
