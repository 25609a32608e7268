// Package events is Orchestry's event contract: the subjects, the typed
// payloads, the CloudEvents envelope they travel in, the JSON Schemas they are
// checked against on receipt, and the one place that declares every
// JetStream stream and KV bucket.
//
// Services import nothing from each other; everything they exchange is
// declared here. Other systems may use this package as a Go client, or publish
// the documented JSON (see schema/) with any NATS client.
//
// State-bearing events (routing.changed, instance.health, config.rendered)
// carry the whole state of their subject and a revision. A consumer keeps the
// highest revision it has applied per key (see Gate) and ignores anything
// older, so late or duplicate deliveries can never move state backwards.
package events
