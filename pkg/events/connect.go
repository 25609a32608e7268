package events

import (
	"time"

	"github.com/nats-io/nats.go"
)

// PingInterval is how often a client pings its NATS server; after
// MaxPingsOut unanswered pings it takes the connection for dead and
// reconnects to another server. A server that dies without closing its
// connections (a killed container, a lost host) is left within about
// PingInterval × (MaxPingsOut+1), where the library's default (2 min × 2)
// left a service deaf for minutes.
const (
	PingInterval = 2 * time.Second
	MaxPingsOut  = 2
)

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
// server), with the liveness pings of PingInterval; extra options (such as
// ReportConnection) come last.
func (c NATSClient) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := append(ClientOptions(name), nats.RetryOnFailedConnect(true))
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	} else if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	return nats.Connect(c.URL, append(opts, extra...)...)
}

// ClientOptions are the options every Orchestry connection uses: the
// client name, endless reconnection and the liveness pings.
func ClientOptions(name string) []nats.Option {
	return []nats.Option{nats.Name(name), nats.MaxReconnects(-1),
		nats.PingInterval(PingInterval), nats.MaxPingsOutstanding(MaxPingsOut)}
}

// ReportConnection tells report of each lost and regained connection to
// NATS (the server's URL, without credentials, and why it was lost), for a
// service's log.
func ReportConnection(report func(event, server string, err error)) nats.Option {
	return func(o *nats.Options) error {
		o.DisconnectedErrCB = func(nc *nats.Conn, err error) { report("disconnected", nc.ConnectedUrlRedacted(), err) }
		o.ReconnectedCB = func(nc *nats.Conn) { report("reconnected", nc.ConnectedUrlRedacted(), nil) }
		return nil
	}
}
