package events

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Services with a NATS identity of their own. ServiceClient is any other
// system (orchestrator, autoscaler) that drives Orchestry with events.
const (
	ServiceRouting  = "routing"
	ServiceHealth   = "health"
	ServiceRenderer = "renderer"
	ServiceCerts    = "certs"
	ServiceMetrics  = "metrics"
	ServiceClient   = "client"
)

// Services lists every identity Permissions knows.
func Services() []string {
	return []string{ServiceRouting, ServiceHealth, ServiceRenderer, ServiceCerts, ServiceMetrics, ServiceClient}
}

// Permissions is what one identity may do on NATS: publish to Publish but
// not PublishDeny, subscribe to Subscribe. JetStream reads are requests on
// $JS.API (answered on the caller's _INBOX), so every identity may read
// the event streams; the buckets holding private keys are denied to all
// but their owners, and each bucket is written by its owner alone.
//
// AllowResponses lets the identity answer the requests it receives on
// Subscribe subjects (NATS allow_responses: one reply per request, to the
// requester's reply subject only, within the server's default expiry).
type Permissions struct {
	Publish        []string
	PublishDeny    []string
	Subscribe      []string
	AllowResponses bool
}

// service is one identity's own subjects and buckets.
type service struct {
	events   []string // event subjects it publishes
	requests []string // core NATS request subjects it sends to
	serves   []string // core NATS request subjects it answers
	writes   []string // buckets it writes
	reads    []string // buckets it reads (besides those it writes)
}

var services = map[string]service{
	ServiceRouting: {events: []string{RoutingChangedWildcard}, requests: []string{RendererConfigWildcard},
		writes: []string{BucketApps}, reads: []string{BucketHealth}},
	ServiceHealth: {events: []string{InstanceHealthWildcard}, writes: []string{BucketHealth, BucketMembers}},
	ServiceRenderer: {events: []string{ConfigRenderedWildcard}, serves: []string{RendererConfigWildcard},
		reads: []string{BucketCerts}},
	ServiceCerts: {events: []string{CertIssuedWildcard, CertFailedWildcard},
		writes: []string{BucketCerts, BucketCertsIssuer, BucketCertsLease, BucketACMEChallenges}},
	ServiceMetrics: {events: []string{MetricsUpstreamWildcard}},
	ServiceClient:  {events: []string{InstanceRegisteredWildcard, InstanceDeregisteredWildcard, InstanceStatsWildcard}},
}

// secretBuckets may be read only by the identities named.
var secretBuckets = map[string][]string{
	BucketCerts:          {ServiceCerts, ServiceRenderer},
	BucketCertsIssuer:    {ServiceCerts},
	BucketCertsLease:     {ServiceCerts},
	BucketACMEChallenges: {ServiceCerts},
}

// PermissionsOf returns the NATS permissions of identity name.
func PermissionsOf(name string) (Permissions, error) {
	svc, ok := services[name]
	if !ok {
		return Permissions{}, fmt.Errorf("events: no NATS identity %q", name)
	}
	p := Permissions{
		// JetStream API requests, acknowledgements and flow-control
		// replies; the refusals below narrow the API.
		Publish:   []string{"$JS.API.>", "$JS.ACK.>", "$JS.FC.>"},
		Subscribe: []string{"_INBOX.>"},
		// Nobody deletes or purges a stream, or a stored message, through
		// the API.
		PublishDeny: []string{"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>"},
	}
	if name != ServiceClient {
		p.Publish = append(p.Publish, RejectedWildcard)
	}
	p.Publish = append(p.Publish, svc.events...)
	p.Publish = append(p.Publish, svc.requests...)
	// Answers go to the requester's inbox only (allow_responses), never to
	// any _INBOX.> subject: a responder cannot forge other replies.
	p.Subscribe = append(p.Subscribe, svc.serves...)
	p.AllowResponses = len(svc.serves) > 0
	for _, b := range svc.writes {
		p.Publish = append(p.Publish, "$KV."+b+".>")
	}
	buckets := make([]string, 0, len(secretBuckets))
	for b := range secretBuckets {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	for _, b := range buckets {
		if slices.Contains(secretBuckets[b], name) {
			continue
		}
		// Every API subject naming the bucket's stream: INFO, CONSUMER.CREATE,
		// DIRECT.GET, MSG.GET, CONSUMER.DURABLE.CREATE and the rest.
		s := "KV_" + b
		p.PublishDeny = append(p.PublishDeny,
			"$JS.API.*."+s, "$JS.API.*."+s+".>", "$JS.API.*.*."+s, "$JS.API.*.*."+s+".>", "$JS.API.*.*.*."+s+".>")
	}
	return p, nil
}

// ProvisionFor creates or updates every stream, and the buckets identity
// name writes or reads, so a service provisions only what its permissions
// allow.
func ProvisionFor(ctx context.Context, js jetstream.JetStream, replicas int, name string) error {
	svc, ok := services[name]
	if !ok {
		return fmt.Errorf("events: no NATS identity %q", name)
	}
	want := append(slices.Clone(svc.writes), svc.reads...)
	return provision(ctx, js, replicas, func(bucket string) bool { return slices.Contains(want, bucket) })
}
