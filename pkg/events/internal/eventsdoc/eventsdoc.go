// Package eventsdoc writes the event catalogue, docs/events.md, from
// package events: every subject family with its CloudEvents type, its
// publishers and consumers, its JSON Schema and an example envelope, every
// KV bucket, and a guide to publishing an event. `go generate` in
// pkg/events runs it (./internal/eventsdoc/gen); a test fails when the file
// differs from Markdown's output.
package eventsdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/orchestry/orchestry/pkg/events"
)

// Markdown returns docs/events.md. exampleSource is pkg/events'
// example_test.go, whose ExamplePublish the guide shows.
func Markdown(exampleSource []byte) ([]byte, error) {
	goExample, err := exampleBody(exampleSource, "ExamplePublish")
	if err != nil {
		return nil, err
	}
	schemas, err := events.Schemas()
	if err != nil {
		return nil, err
	}
	examples, err := Examples()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Event catalogue\n\n")
	w("<!-- Generated from pkg/events by `go generate ./pkg/events` (internal/eventsdoc). Do not edit. -->\n\n")
	w("Every message Orchestry's services exchange on NATS JetStream is a CloudEvents 1.0\n")
	w("envelope in structured JSON ([envelope schema](../pkg/events/schema/%s)); its `id` is\n", "envelope.v1.json")
	w("sent as `Nats-Msg-Id`, so JetStream stores a repeated publish once (within two minutes).\n")
	w("On receipt every consumer checks the envelope, the type against the subject, the data\n")
	w("against the type's JSON Schema, unknown fields and the data's own grammar\n")
	w("(`events.Decode`), and answers a refused event on `rejected.<subject>`.\n\n")
	w("Publishers are the NATS identities whose permissions (`events.PermissionsOf`) allow\n")
	w("publishing the subject; `client` is any other system driving Orchestry (an\n")
	w("orchestrator, an autoscaler). See [architecture.md](architecture.md) for the flows.\n\n")
	w("## Subjects\n\n")
	w("| Subject | CloudEvents type | Data (Go type) | Stream | Publishers | Consumers |\n|---|---|---|---|---|---|\n")
	fams := events.Catalogue()
	for _, f := range fams {
		var cons []string
		for _, c := range f.Consumers {
			cons = append(cons, c.Service)
		}
		w("| [`%s`](#%s) | `%s` | `%s` | `%s` | %s | %s |\n", f.Subject, anchor(f.Subject), f.Type, f.Payload, f.Stream,
			orNone(f.Publishers, "every service but `client`"), orNone(cons, "none"))
	}
	w("\nThe last token(s) of a subject name the entity: the app, the NGINX node, or the domain\n")
	w("(`events.CertKey`: `*.` is written `_wildcard.`); `rejected.` is followed by the whole\n")
	w("original subject.\n\n")
	for _, f := range fams {
		ex, ok := examples[f.Type]
		if !ok {
			return nil, fmt.Errorf("no example of %s", f.Type)
		}
		if err := family(&b, f, ex, schemas[f.Schema]); err != nil {
			return nil, err
		}
	}
	requestSection(&b)
	buckets(&b)
	guide(&b, examples["io.orchestry.instance.registered.v1"], goExample)
	return b.Bytes(), nil
}

// family writes the section of one subject family.
func family(b *bytes.Buffer, f events.Family, ex Example, schema []byte) error {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### %s\n\n", f.Subject)
	w("%s\n\n", f.About)
	w("- Type: `%s`, data `events.%s`, schema [`%s`](../pkg/events/schema/%s)\n", f.Type, f.Payload, f.Schema, f.Schema)
	w("- Stream: `%s`\n", f.Stream)
	w("- Published by: %s\n", orNone(f.Publishers, "nobody"))
	if len(f.Consumers) == 0 {
		w("- Consumed by: no service; kept in the `%s` stream for operators (`nats stream view %s`, `GET /v1/events?subject=%s`)\n", f.Stream, f.Stream, f.Subject)
	} else {
		w("- Consumed by:\n")
		for _, c := range f.Consumers {
			w("  - %s: %s\n", c.Service, c.Use)
		}
	}
	env, err := json.MarshalIndent(ex.Envelope, "", "  ")
	if err != nil {
		return err
	}
	w("\nExample, on `%s`:\n\n```json\n%s\n```\n\n", ex.Subject, env)
	w("<details><summary>JSON Schema of the data</summary>\n\n```json\n%s```\n\n</details>\n\n", schema)
	return nil
}

// requestSection writes the core NATS request subjects.
func requestSection(b *bytes.Buffer) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Requests (core NATS request/reply)\n\n")
	w("Not events: no envelope, nothing stored in a stream. The answer is plain JSON, sent\n")
	w("only to the requester's inbox (NATS `allow_responses`).\n\n")
	w("| Subject | Answer (Go type) | Asked by | Answered by | What |\n|---|---|---|---|---|\n")
	for _, r := range events.Requests() {
		w("| `%s` | `events.%s` | %s | %s | %s |\n", r.Subject, r.Answer, orNone(r.Requesters, "-"), orNone(r.Responders, "-"), r.About)
	}
	w("\n")
}

// buckets writes the KV buckets' table.
func buckets(b *bytes.Buffer) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## KV buckets\n\n")
	w("A bucket is written only by its writers (`$KV.<bucket>.>`); a secret one cannot be read,\n")
	w("watched or subscribed to by any other identity.\n\n")
	w("| Bucket | Holds | Key | Entry TTL | Writers | Also read by | Secret |\n|---|---|---|---|---|---|---|\n")
	for _, k := range events.BucketCatalogue() {
		ttl := "none"
		if k.TTL > 0 {
			ttl = k.TTL.String()
		}
		secret := "no"
		if k.Secret {
			secret = "yes"
		}
		w("| `%s` | %s | %s | %s | %s | %s | %s |\n", k.Name, k.Description, k.Key, ttl, orNone(k.Writers, "-"), orNone(k.Readers, "-"), secret)
	}
	w("\n")
}

// guide writes how to publish an instance registration.
func guide(b *bytes.Buffer, ex Example, goExample example) {
	env, _ := json.Marshal(ex.Envelope)
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Publishing an event: registering an instance\n\n")
	w("Any system may register and remove instances, and report their CPU and memory, by\n")
	w("publishing `instance.registered.<app>`, `instance.deregistered.<app>` and\n")
	w("`instance.stats.<app>` as the NATS user `client`. Routing stores the instance (as\n")
	w("`POST /v1/apps/{name}/instances` does) and publishes the app's new `routing.changed`;\n")
	w("an invalid event is answered on `rejected.<subject>` and changes nothing. Use a fresh\n")
	w("envelope `id` per event and send it as `Nats-Msg-Id` too: a retried publish is then\n")
	w("stored once.\n\n")
	w("### With the `nats` CLI\n\n")
	w("The all-in-one (`orchestry up`) runs NATS on `127.0.0.1:4222` (`ORCHESTRY_NATS_LISTEN`),\n")
	w("where `client`'s password is the NATS token, generated into `.data/nats-token` on the\n")
	w("first start (or `ORCHESTRY_NATS_TOKEN`):\n\n")
	w("```sh\n")
	w("nats --server nats://127.0.0.1:4222 --user client --password \"$(cat .data/nats-token)\" \\\n")
	w("  pub %s --header Nats-Msg-Id:%s \\\n  '%s'\n", ex.Subject, ex.Envelope.ID, env)
	w("```\n\n")
	w("`nats pub` publishes on core NATS and the `INSTANCES` stream stores the event all the\n")
	w("same (`nats req` with the same arguments prints JetStream's acknowledgement instead).\n")
	w("The app must exist (`PUT /v1/apps/%s`): a registration for an unknown app, like an\n", strings.TrimPrefix(ex.Subject, "instance.registered."))
	w("invalid one, is rejected, and the reason is on `rejected.%s` in the `REJECTED`\n", ex.Subject)
	w("stream (`nats stream view REJECTED` as `client`, or `GET /v1/events?subject=rejected.>`).\n\n")
	w("### With Go (`pkg/events`)\n\n")
	w("`events.Publish` validates the payload, wraps it in a fresh envelope and publishes it\n")
	w("with its id as `Nats-Msg-Id`; the acknowledgement names the stream that stored it.\n")
	w("From `ExamplePublish` in `pkg/events/example_test.go`, which `go test` runs against an\n")
	w("embedded server (`exampleServer` stands in for the all-in-one's NATS):\n\n")
	w("```go\n%s```\n\n", goExample.body)
	w("It prints:\n\n```\n%s```\n\n", goExample.output)
	w("`events.InstanceDeregistered(app)` with `events.InstanceRemoval{ID: ...}` removes it again.\n")
}

// anchor is the GitHub anchor of a family's heading.
func anchor(subject string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(subject) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func orNone(list []string, none string) string {
	if len(list) == 0 {
		return none
	}
	return strings.Join(list, ", ")
}

// example is the code of an Example function and the output it checks.
type example struct{ body, output string }

// exampleBody returns the body of function name in Go source src,
// unindented, up to its "// Output:" comment, and that output.
func exampleBody(src []byte, name string) (example, error) {
	head := "func " + name + "() {\n"
	i := bytes.Index(src, []byte(head))
	if i < 0 {
		return example{}, fmt.Errorf("no %s in the example source", name)
	}
	rest := string(src[i+len(head):])
	body, after, ok := strings.Cut(rest, "\t// Output:\n")
	if !ok {
		return example{}, fmt.Errorf("%s has no Output comment", name)
	}
	after, _, _ = strings.Cut(after, "\n}\n")
	var ex example
	for _, line := range strings.SplitAfter(body, "\n") {
		ex.body += strings.TrimPrefix(line, "\t")
	}
	for _, line := range strings.Split(after, "\n") {
		ex.output += strings.TrimPrefix(line, "\t// ") + "\n"
	}
	return ex, nil
}
