package events

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Publish validates p, wraps it in a fresh envelope from source and publishes
// it on subject to JetStream, with the envelope id as Nats-Msg-Id.
func Publish(ctx context.Context, js jetstream.JetStream, source, subject string, p Payload) (*jetstream.PubAck, error) {
	env, err := NewEnvelope(source, subject, p)
	if err != nil {
		return nil, err
	}
	return PublishEnvelope(ctx, js, subject, env)
}

// PublishEnvelope publishes an envelope as it is, with its id as Nats-Msg-Id,
// so publishing the same envelope twice stores it once.
func PublishEnvelope(ctx context.Context, js jetstream.JetStream, subject string, env Envelope) (*jetstream.PubAck, error) {
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("events: encode envelope: %w", err)
	}
	ack, err := js.Publish(ctx, subject, b, jetstream.WithMsgID(env.ID))
	if err != nil {
		return nil, fmt.Errorf("events: publish %s: %w", subject, err)
	}
	return ack, nil
}

// Reject answers an event that arrived on subject and failed Decode with
// reason: it publishes a Rejection on Rejected(subject), naming the consumer
// by. It reads the envelope's id and type from raw when it can.
func Reject(ctx context.Context, js jetstream.JetStream, by, subject string, raw []byte, reason error) error {
	var head struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(raw, &head) // best effort: raw may not be JSON at all
	r := Rejection{
		Subject: subject,
		EventID: clip(head.ID, 128),
		Type:    clip(head.Type, 128),
		Reason:  clip(reason.Error(), 2048),
		By:      by,
	}
	_, err := Publish(ctx, js, by, Rejected(subject), r)
	return err
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
