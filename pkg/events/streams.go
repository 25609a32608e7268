package events

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	StreamRouting   = "ROUTING"
	StreamInstances = "INSTANCES"
	StreamStats     = "STATS"
	StreamHealth    = "HEALTH"
	StreamConfig    = "CONFIG"
	StreamCerts     = "CERTS"
	StreamMetrics   = "METRICS"
	StreamRejected  = "REJECTED"
)

// KV bucket names.
const (
	// BucketApps holds routing's source of truth: one key per app, the
	// value a JSON AppRecord.
	BucketApps = "apps"
	// BucketHealth holds the current HealthState per instance; the key is
	// HealthKey(app, instance).
	BucketHealth = "health"
	// BucketMembers holds the heartbeats of service replicas that share
	// work (health probers), one key per "<service>.<replica>"; entries
	// vanish a minute after the last heartbeat.
	BucketMembers = "members"
	// BucketCerts holds the certificate of each TLS domain, the value a
	// JSON CertBundle (chain and private key) under CertKey(domain):
	// written by the certs issuer, read by every renderer. Only those two
	// services may read it.
	BucketCerts = "certs"
	// BucketACMEChallenges holds pending ACME HTTP-01 answers: the token
	// as key, the key authorization as value, gone after an hour. Any
	// certs replica answers NGINX's challenge requests from it.
	BucketACMEChallenges = "acme-challenges"
	// BucketCertsLease holds the issuer lease: one key, CertsLeaseKey,
	// naming the certs replica that may issue; it lapses CertsLeaseTTL
	// after its holder's last renewal.
	BucketCertsLease = "certs-lease"
	// BucketCertsIssuer holds the issuer's own secrets, so that whichever
	// certs replica holds the lease issues with them: the ACME account
	// (key and registration) per directory URL and the local CA of the
	// selfsigned provider. Only the certs service may read it.
	BucketCertsIssuer = "certs-issuer"
)

// CertsLeaseKey is the key of the issuer lease in BucketCertsLease.
const CertsLeaseKey = "issuer"

// CertsLeaseTTL is how long the issuer lease outlives its holder's last
// renewal.
const CertsLeaseTTL = 15 * time.Second

// HealthKey is the BucketHealth key of an instance. Instance ids may hold
// ':' which KV keys may not, so the id is base64url-encoded.
func HealthKey(app, instanceID string) string {
	return app + "." + base64.RawURLEncoding.EncodeToString([]byte(instanceID))
}

// dedupWindow is how long JetStream remembers Nats-Msg-Id values.
const dedupWindow = 2 * time.Minute

// Streams returns the configuration of every stream, with retention chosen
// per subject family, each replicated replicas times.
func Streams(replicas int) []jetstream.StreamConfig {
	day := 24 * time.Hour
	s := func(name, desc string, subjects []string, perSubject int64, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:              name,
			Description:       desc,
			Subjects:          subjects,
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          replicas,
			MaxMsgsPerSubject: perSubject,
			MaxAge:            maxAge,
			Duplicates:        dedupWindow,
			Discard:           jetstream.DiscardOld,
		}
	}
	return []jetstream.StreamConfig{
		// The last few states per app; consumers replay the last per subject.
		s(StreamRouting, "routing.changed: whole resolved state per app", []string{RoutingChangedWildcard}, 8, 0),
		// Commands from other systems, consumed durably by routing.
		s(StreamInstances, "instance registrations and removals from any system", []string{InstanceRegisteredWildcard, InstanceDeregisteredWildcard}, -1, 7*day),
		s(StreamStats, "instance cpu/memory reports", []string{InstanceStatsWildcard}, 10000, time.Hour),
		s(StreamHealth, "instance health transitions", []string{InstanceHealthWildcard}, 100000, day),
		s(StreamConfig, "render reports per NGINX node", []string{ConfigRenderedWildcard}, 64, 7*day),
		s(StreamCerts, "certificate issuance and failures", []string{CertIssuedWildcard, CertFailedWildcard}, 16, 0),
		s(StreamMetrics, "per-app traffic figures", []string{MetricsUpstreamWildcard}, 1000, day),
		s(StreamRejected, "events refused by a consumer, with the reason", []string{RejectedWildcard}, -1, 7*day),
	}
}

// Buckets returns the configuration of every KV bucket.
func Buckets(replicas int) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: BucketApps, Description: "routing: apps and their instances", History: 1, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: BucketHealth, Description: "health: current state per instance", History: 1, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: BucketMembers, Description: "heartbeats of replicas sharing work", History: 1, TTL: time.Minute, Storage: jetstream.MemoryStorage, Replicas: replicas},
		{Bucket: BucketCerts, Description: "certs: certificate chain and key per TLS domain", History: 1, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: BucketACMEChallenges, Description: "certs: pending ACME HTTP-01 answers", History: 1, TTL: time.Hour, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: BucketCertsIssuer, Description: "certs: ACME accounts and the local CA", History: 1, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: BucketCertsLease, Description: "certs: the issuer lease", History: 1, TTL: CertsLeaseTTL, Storage: jetstream.FileStorage, Replicas: replicas},
	}
}

// Provision creates or updates every stream and KV bucket. It is idempotent:
// whichever service starts first creates them, the others find them.
func Provision(ctx context.Context, js jetstream.JetStream, replicas int) error {
	return provision(ctx, js, replicas, func(string) bool { return true })
}

// provision creates or updates every stream and the buckets want accepts.
func provision(ctx context.Context, js jetstream.JetStream, replicas int, want func(bucket string) bool) error {
	if replicas < 1 {
		replicas = 1
	}
	for _, cfg := range Streams(replicas) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("provision stream %s: %w", cfg.Name, err)
		}
	}
	for _, cfg := range Buckets(replicas) {
		if !want(cfg.Bucket) {
			continue
		}
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("provision bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}
