package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents version of every envelope.
const SpecVersion = "1.0"

// Envelope is a CloudEvents 1.0 event in structured JSON mode. Its ID is also
// sent as the Nats-Msg-Id header, so JetStream drops a repeated publish.
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	Subject         string          `json:"subject,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// kind describes one event type: its CloudEvents type, the subject family it
// travels on and its Go payload type.
type kind struct {
	typ    string
	family string // subject prefix before the entity, without the dot
	schema string // file name under schema/
	goType reflect.Type
}

// kinds is the registry of every event in the contract.
var kinds = []kind{
	{"io.orchestry.routing.changed.v1", "routing.changed", "routing.changed.v1.json", reflect.TypeFor[RoutingState]()},
	{"io.orchestry.instance.registered.v1", "instance.registered", "instance.registered.v1.json", reflect.TypeFor[InstanceRegistration]()},
	{"io.orchestry.instance.deregistered.v1", "instance.deregistered", "instance.deregistered.v1.json", reflect.TypeFor[InstanceRemoval]()},
	{"io.orchestry.instance.stats.v1", "instance.stats", "instance.stats.v1.json", reflect.TypeFor[StatsReport]()},
	{"io.orchestry.instance.health.v1", "instance.health", "instance.health.v1.json", reflect.TypeFor[HealthState]()},
	{"io.orchestry.config.rendered.v1", "config.rendered", "config.rendered.v1.json", reflect.TypeFor[RenderReport]()},
	{"io.orchestry.cert.issued.v1", "cert.issued", "cert.issued.v1.json", reflect.TypeFor[Certificate]()},
	{"io.orchestry.cert.failed.v1", "cert.failed", "cert.failed.v1.json", reflect.TypeFor[CertFailure]()},
	{"io.orchestry.metrics.upstream.v1", "metrics.upstream", "metrics.upstream.v1.json", reflect.TypeFor[UpstreamMetrics]()},
	{"io.orchestry.rejected.v1", "rejected", "rejected.v1.json", reflect.TypeFor[Rejection]()},
}

var (
	kindByType   = map[string]*kind{}
	kindByGoType = map[reflect.Type]*kind{}
)

func init() {
	for i := range kinds {
		k := &kinds[i]
		kindByType[k.typ] = k
		kindByGoType[k.goType] = k
	}
}

// TypeOf returns the CloudEvents type of payload p.
func TypeOf(p Payload) (string, error) {
	k, ok := kindByGoType[reflect.TypeOf(p)]
	if !ok {
		return "", fmt.Errorf("events: %T is not an event payload", p)
	}
	return k.typ, nil
}

// NewEnvelope wraps payload p, published by source on subject, in an envelope
// with a fresh id. It validates p first: nothing invalid is ever published.
func NewEnvelope(source, subject string, p Payload) (Envelope, error) {
	k, ok := kindByGoType[reflect.TypeOf(p)]
	if !ok {
		return Envelope{}, fmt.Errorf("events: %T is not an event payload", p)
	}
	if err := p.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("events: %s: %w", k.typ, err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return Envelope{}, fmt.Errorf("events: encode %s: %w", k.typ, err)
	}
	return Envelope{
		SpecVersion:     SpecVersion,
		ID:              uuid.NewString(),
		Source:          source,
		Type:            k.typ,
		Time:            time.Now().UTC(),
		Subject:         subject,
		DataContentType: "application/json",
		DataSchema:      SchemaURI(k.schema),
		Data:            data,
	}, nil
}

// SchemaURI is the dataschema URI of a schema file under schema/.
func SchemaURI(file string) string {
	return "https://orchestry.dev/schema/" + file
}

// Event is a received event that passed every check: its envelope and its
// typed payload (a value of one of the payload types, e.g. RoutingState).
type Event struct {
	Envelope Envelope
	Payload  Payload
}

// ErrRejected wraps every reason Decode refuses an event.
var ErrRejected = errors.New("event rejected")

// Decode checks a message received on subject and returns its typed payload.
// It refuses (with an error wrapping ErrRejected and saying why) anything
// that is not valid JSON, not a CloudEvents 1.0 envelope, of an unknown
// type, of a type that does not belong on subject, not valid against the
// type's JSON Schema, or invalid by the payload's own grammar.
func Decode(subject string, raw []byte) (Event, error) {
	reject := func(format string, args ...any) (Event, error) {
		return Event{}, fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
	}
	if err := validateSchema(envelopeSchemaFile, raw); err != nil {
		return reject("envelope: %v", err)
	}
	var env Envelope
	if err := strictUnmarshal(raw, &env); err != nil {
		return reject("envelope: %v", err)
	}
	k, ok := kindByType[env.Type]
	if !ok {
		return reject("unknown event type %q", env.Type)
	}
	entity, ok := strings.CutPrefix(subject, k.family+".")
	if !ok || entity == "" {
		return reject("type %s does not belong on subject %s", env.Type, subject)
	}
	if err := validateSchema(k.schema, env.Data); err != nil {
		return reject("data: %v", err)
	}
	v := reflect.New(k.goType)
	if err := strictUnmarshal(env.Data, v.Interface()); err != nil {
		return reject("data: %v", err)
	}
	p := v.Elem().Interface().(Payload)
	if err := p.Validate(); err != nil {
		return reject("data: %v", err)
	}
	if e := p.entity(); e != "" && e != entity && k.family != "rejected" {
		return reject("data is about %q but the subject names %q", e, entity)
	}
	return Event{Envelope: env, Payload: p}, nil
}

func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
