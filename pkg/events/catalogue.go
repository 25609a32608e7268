package events

import (
	"slices"
	"strings"
	"time"
)

//go:generate go run ./internal/eventsdoc/gen -out ../../docs/events.md

// Family is one subject family of the event contract, as the event
// catalogue (docs/events.md) shows it. Its type, schema, payload and
// stream come from the registry and Streams; its publishers from the
// identities' permissions (PermissionsOf); its consumers and description
// are declared here, next to the contract they describe.
type Family struct {
	// Subject is the family's NATS wildcard, e.g. "routing.changed.*".
	Subject string
	// Type is the CloudEvents type of its events.
	Type string
	// Schema is the file of its data's JSON Schema under schema/.
	Schema string
	// Payload is the Go type of its data, e.g. "RoutingState".
	Payload string
	// Stream is the JetStream stream that stores it.
	Stream string
	// Publishers are the identities whose permissions let them publish it.
	Publishers []string
	// Consumers are the services that read it, and what for.
	Consumers []Consumer
	// About says what one event of the family is.
	About string
}

// Consumer is one service reading a family or a bucket.
type Consumer struct {
	// Service is the identity (ServiceRouting, ...).
	Service string
	// Use says how it reads (which JetStream consumer) and what for.
	Use string
}

// BucketInfo is one KV bucket as the catalogue shows it. Writers and
// readers come from the identities' permissions; the bucket's settings
// from Buckets.
type BucketInfo struct {
	// Name is the bucket's name.
	Name string
	// Description is its description in Buckets.
	Description string
	// TTL is how long an entry lives after its last write (0: for ever).
	TTL time.Duration
	// Key says what a key is.
	Key string
	// Writers are the identities that may write it.
	Writers []string
	// Readers are the other identities that provision and read it.
	Readers []string
	// Secret reports whether only its readers and writers may read it
	// (every other identity is refused the bucket's stream).
	Secret bool
}

// Request is one core NATS request/reply subject (not an event: nothing
// is stored in a stream). Requesters and responders come from the
// identities' permissions.
type Request struct {
	// Subject is the request subject's wildcard.
	Subject string
	// Answer is the Go type of the JSON answer.
	Answer string
	// Requesters are the identities that may ask.
	Requesters []string
	// Responders are the identities that answer (allow_responses).
	Responders []string
	// About says what is asked.
	About string
}

// requests describes each request subject: the answer's Go type and what
// is asked.
var requests = map[string][2]string{
	RendererConfigWildcard: {"NodeConfig", "The live NGINX config of one node (`renderer.config.<node>`): its renderer answers with the files NGINX runs now, never a certificate or key. Routing asks, for `GET /v1/nodes/{node}/config`."},
}

// about describes each family, by its family prefix.
var about = map[string]string{
	"routing.changed":       "The whole resolved state of one app (spec, instances, revision = KV revision of the app), published by routing's outbox after every change of its `apps` entry; `deleted` when the app is gone.",
	"instance.registered":   "A command: add the instance to the app, or replace the one with the same id.",
	"instance.deregistered": "A command: remove the instance with this id from the app.",
	"instance.stats":        "CPU and memory figures of one instance, reported by the system that runs it.",
	"instance.health":       "The whole health state of one instance after a transition (healthy, unhealthy, ejected, draining); revision = the KV revision of its `health` entry.",
	"config.rendered":       "The outcome of one render cycle of an NGINX node: the version live, the one attempted, the outcome, durations, and the apps whose changes it serves.",
	"cert.issued":           "A certificate was issued or renewed for a domain (the summary; never the key, which is in the `certs` bucket).",
	"cert.failed":           "Issuing a certificate for a domain failed: the reason and when the next attempt is.",
	"metrics.upstream":      "One window of traffic figures of an app, per instance address (requests, latency percentiles, status classes, gateway errors, retries).",
	"rejected":              "A consumer refused an event that arrived on `<original subject>`: the reason, the event's id and type, and who refused it.",
}

// feedUse is how routing's event feed reads a family.
const feedUse = "ordered consumer: routing's event feed (`GET /v1/events`, `/v1/events/stream`, the console)"

// consumers declares who reads each family, by its family prefix.
var consumers = map[string][]Consumer{
	"routing.changed": {
		{ServiceRenderer, "ordered consumer from the last per app: applies newer revisions to its model and renders"},
		{ServiceHealth, "the targets to probe and their healthCheck"},
		{ServiceMetrics, "the known apps: access-log lines naming any other app are dropped"},
		{ServiceCerts, "ordered consumer, last per app: the domains of TLS apps to issue for"},
		{ServiceRouting, feedUse},
	},
	"instance.registered": {
		{ServiceRouting, "durable consumer `routing-instances`: stores the instance in the app's `apps` entry; and " + feedUse},
	},
	"instance.deregistered": {
		{ServiceRouting, "durable consumer `routing-instances`: removes the instance from the app's `apps` entry; and " + feedUse},
	},
	"instance.stats": {
		{ServiceRouting, "durable consumer `routing-stats`: the instance's `load_band`, written only when it changes (with hysteresis)"},
	},
	"instance.health": {
		{ServiceRenderer, "serves healthy instances only (ejected ones below the panic floor)"},
		{ServiceRouting, feedUse},
	},
	"config.rendered": {
		{ServiceRouting, "ordered consumer: the last report per node for `GET /v1/status`, the revisions each node serves for `GET /v1/apps/{name}/rollout`; and " + feedUse},
		{ServiceMetrics, "reloads, the live version, convergence time and the node's status server to scrape"},
	},
	"cert.issued": {
		{ServiceRouting, "the last per domain, for `GET /v1/certs`; and " + feedUse},
		{ServiceMetrics, "the certificate's expiry"},
	},
	"cert.failed": {
		{ServiceRouting, "the last per domain, for `GET /v1/certs`; and " + feedUse},
	},
	"metrics.upstream": {
		{ServiceRouting, "durable consumer `routing-auto`: the method and weights of `lb_method: auto` apps; the last per app, for `GET /v1/apps/{name}/metrics`; and " + feedUse},
		{ServiceHealth, "ordered consumer, new windows only: outlier detection (ejections)"},
	},
	"rejected": {
		{ServiceRouting, feedUse + "; otherwise kept seven days for operators"},
	},
}

// bucketKeys says what a key of each bucket is.
var bucketKeys = map[string]string{
	BucketApps:           "the app's name; the value a JSON AppRecord",
	BucketHealth:         "HealthKey(app, instance id); the value a JSON HealthState",
	BucketMembers:        "`<service>.<replica>`; a heartbeat",
	BucketCerts:          "CertKey(domain) (`*.` written `_wildcard.`); the value a JSON CertBundle (chain and private key)",
	BucketACMEChallenges: "the HTTP-01 token; the value its key authorization",
	BucketCertsIssuer:    "per ACME directory URL, the account; and the local CA",
	BucketCertsLease:     "CertsLeaseKey; the replica holding the issuer lease",
}

// Catalogue describes every subject family of the event contract, in the
// registry's order.
func Catalogue() []Family {
	streams := Streams(1)
	out := make([]Family, 0, len(kinds))
	for _, k := range kinds {
		f := Family{
			Type:      k.typ,
			Schema:    k.schema,
			Payload:   k.goType.Name(),
			About:     about[k.family],
			Consumers: slices.Clone(consumers[k.family]),
		}
		for _, s := range streams {
			for _, sub := range s.Subjects {
				if strings.HasPrefix(sub, k.family+".") {
					f.Subject, f.Stream = sub, s.Name
				}
			}
		}
		for _, id := range Services() {
			svc := services[id]
			if slices.Contains(svc.events, f.Subject) || f.Subject == RejectedWildcard && id != ServiceClient {
				f.Publishers = append(f.Publishers, id)
			}
		}
		out = append(out, f)
	}
	return out
}

// BucketCatalogue describes every KV bucket, in Buckets' order.
func BucketCatalogue() []BucketInfo {
	var out []BucketInfo
	for _, cfg := range Buckets(1) {
		b := BucketInfo{Name: cfg.Bucket, Description: cfg.Description, TTL: cfg.TTL, Key: bucketKeys[cfg.Bucket]}
		_, b.Secret = secretBuckets[cfg.Bucket]
		for _, id := range Services() {
			svc := services[id]
			switch {
			case slices.Contains(svc.writes, cfg.Bucket):
				b.Writers = append(b.Writers, id)
			case slices.Contains(svc.reads, cfg.Bucket):
				b.Readers = append(b.Readers, id)
			}
		}
		out = append(out, b)
	}
	return out
}

// Requests describes every core NATS request subject, sorted.
func Requests() []Request {
	var out []Request
	for subject, r := range requests {
		q := Request{Subject: subject, Answer: r[0], About: r[1]}
		for _, id := range Services() {
			if slices.Contains(services[id].requests, subject) {
				q.Requesters = append(q.Requesters, id)
			}
			if slices.Contains(services[id].serves, subject) {
				q.Responders = append(q.Responders, id)
			}
		}
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b Request) int { return strings.Compare(a.Subject, b.Subject) })
	return out
}
