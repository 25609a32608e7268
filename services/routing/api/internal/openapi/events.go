package openapi

import (
	"fmt"

	"github.com/orchestry/orchestry/services/routing/api"
)

// eventQuery is the filters of the event log; limit only for the list.
func eventQuery(limit bool) []param {
	out := []param{
		{name: "app", desc: "Only events about this app (an app name; otherwise 422).", schema: map[string]any{"type": "string"}},
		{name: "subject", desc: "Only events whose subject starts with this prefix (instance.health), or matches " +
			"this NATS filter when a token is a wildcard (instance.*.web, cert.>); at most 256 characters, no spaces (otherwise 422).",
			schema: map[string]any{"type": "string", "maxLength": 256}},
	}
	if limit {
		out = append(out, param{name: "limit",
			desc:   fmt.Sprintf("At most this many of the newest events (1 to %d, default %d; otherwise 422).", api.MaxEventLimit, api.DefaultEventLimit),
			schema: map[string]any{"type": "integer", "minimum": 1, "maximum": api.MaxEventLimit, "default": api.DefaultEventLimit}})
	}
	return out
}

// streamDesc describes GET /v1/events/stream.
var streamDesc = "Server-Sent Events: first `retry: 2000`, then the feed's events that pass the filter (those after " +
	"the Last-Event-ID header's sequence number when it sends one), then each new one as it arrives, each as " +
	"`id: <seq>`, `event: <CloudEvents type>` and `data: <EventRecord as JSON>`; a `: keepalive` comment every " +
	api.DefaultKeepAlive.String() + " (by default). A client too slow to keep up is sent `: dropped` and the stream ends: reconnect with Last-Event-ID."

// nodeConfigHeaders are the headers of GET /v1/nodes/{node}/config's 200.
var nodeConfigHeaders = map[string]any{
	"X-Orchestry-Config-Version": map[string]any{"description": "The live config version.", "schema": map[string]any{"type": "integer"}},
	"X-Orchestry-Config-Hash":    map[string]any{"description": "The live config's hash (as in config.rendered).", "schema": map[string]any{"type": "string"}},
}
