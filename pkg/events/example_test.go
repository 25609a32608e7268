package events_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

// ExamplePublish registers an instance of the app "shop" the way any other
// system drives Orchestry: as the NATS user "client", through
// events.Publish, which validates the payload, wraps it in a CloudEvents
// envelope and publishes it with its id as Nats-Msg-Id. docs/events.md
// shows the same code.
func ExamplePublish() {
	url, token, stop := exampleServer() // like the all-in-one's: 127.0.0.1:4222, .data/nats-token
	defer stop()
	ctx := context.Background()

	nc, err := events.NATSClient{URL: url, User: events.ServiceClient, Password: token}.Connect("orchestrator")
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	reg := events.InstanceRegistration{Instance: events.Instance{ID: "shop-7d9f", IP: "10.0.3.17", Port: 8080}}
	ack, err := events.Publish(ctx, js, "orchestrator", events.InstanceRegistered("shop"), reg)
	if err != nil {
		log.Fatal(err) // e.g. the payload failed validation: nothing was published
	}
	fmt.Println(ack.Stream)

	// An invalid payload is refused before anything is sent.
	bad := events.InstanceRegistration{Instance: events.Instance{ID: "shop-7d9f", IP: "10.0.3.999", Port: 8080}}
	_, err = events.Publish(ctx, js, "orchestrator", events.InstanceRegistered("shop"), bad)
	fmt.Println(err)
	// Output:
	// INSTANCES
	// events: io.orchestry.instance.registered.v1: invalid: instance.ip: must be an IPv4 or IPv6 address
}

// exampleServer runs an embedded NATS server with JetStream and every
// stream and bucket (as eventstest.Start does for tests), whose users are
// an administrator and "client" with its events.PermissionsOf. It returns
// the URL, client's password and a function stopping the server.
func exampleServer() (url, password string, stop func()) {
	dir, err := os.MkdirTemp("", "events-example")
	if err != nil {
		log.Fatal(err)
	}
	password = "example-token"
	p, err := events.PermissionsOf(events.ServiceClient)
	if err != nil {
		log.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true,
		Users: []*server.User{
			{Username: "admin", Password: "admin"},
			{Username: events.ServiceClient, Password: password, Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: p.Publish, Deny: p.PublishDeny},
				Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
			}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "admin"))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := events.Provision(ctx, js, 1); err != nil {
		log.Fatal(err)
	}
	return s.ClientURL(), password, func() {
		s.Shutdown()
		s.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}
}
