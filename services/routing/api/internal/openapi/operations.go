package openapi

import (
	"net/http"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/spec"
)

// Shorthands for the operation table.
const (
	s200 = http.StatusOK
	s201 = http.StatusCreated
	s204 = http.StatusNoContent
	s400 = http.StatusBadRequest
	s401 = http.StatusUnauthorized
	s404 = http.StatusNotFound
	s409 = http.StatusConflict
	s413 = http.StatusRequestEntityTooLarge
	s415 = http.StatusUnsupportedMediaType
	s422 = http.StatusUnprocessableEntity
	s500 = http.StatusInternalServerError
)

// errs lists reusable error responses.
func errs(codes ...int) []response {
	out := make([]response, len(codes))
	for i, c := range codes {
		out[i] = response{status: c}
	}
	return out
}

// jsonBody is a JSON request body of the schema.
func jsonBody(desc string, schema map[string]any) map[string]any {
	return map[string]any{"required": true, "description": desc, "content": map[string]any{
		"application/json": map[string]any{"schema": schema},
	}}
}

// operations is every operation of the API, with every status its handler
// can write. TestSpecCoversRoutes holds the paths equal to api.New's
// routes; TestResponsesMatchSpec drives the handlers to each status.
func operations(c *components) []operation {
	appDoc := appDocument(c)
	instance := c.ref(typeOf[events.Instance]())
	rule := ruleBody(c)
	return []operation{
		{method: "GET", path: "/v1/apps", id: "listApps", summary: "List every app with its instances and revision",
			responses: append([]response{{status: s200, desc: "Every app, sorted by name.", body: typeOf[api.AppsView]()}}, errs(s401, s500)...)},
		{method: "GET", path: "/v1/apps/{name}", id: "getApp", summary: "Get one app as declared, with its instances and revision",
			responses: append([]response{{status: s200, desc: "The app.", body: typeOf[api.AppView]()}}, errs(s401, s404, s500)...)},
		{method: "PUT", path: "/v1/apps/{name}", id: "putApp", summary: "Create or replace an app",
			desc: "The body is Orchestry's app file, YAML or JSON (the Content-Type says which; none is sniffed as YAML). " +
				"Orchestration fields the traffic plane ignores (spec.image, spec.ports, spec.resources, spec.environment, " +
				"spec.command, spec.args, spec.workingDir, spec.volumes, spec.type, scaling) are accepted with a warning each; " +
				"any other unknown field is a 422. The store refuses an external port and domain another app already serves.",
			body: map[string]any{"required": true, "content": map[string]any{
				"application/yaml": map[string]any{"schema": appDoc},
				"application/json": map[string]any{"schema": appDoc},
			}},
			responses: append([]response{
				{status: s200, desc: "Replaced.", body: typeOf[api.PutResult]()},
				{status: s201, desc: "Created.", body: typeOf[api.PutResult]()},
			}, errs(s400, s401, s409, s413, s415, s422, s500)...)},
		{method: "DELETE", path: "/v1/apps/{name}", id: "deleteApp", summary: "Delete an app and its instances",
			responses: append([]response{{status: s204, desc: "Deleted."}}, errs(s401, s404, s409, s500)...)},
		{method: "GET", path: "/v1/apps/{name}/instances", id: "listInstances", summary: "List an app's instances with their health",
			responses: append([]response{{status: s200, desc: "The instances; health is absent until the health service reports.", body: typeOf[api.InstancesView]()}}, errs(s401, s404, s500)...)},
		{method: "POST", path: "/v1/apps/{name}/instances", id: "registerInstance", summary: "Register (or replace, by id) an instance",
			desc: "The same as publishing instance.registered.<app>. Unknown fields are a 422.",
			body: jsonBody("The instance.", instance),
			responses: append([]response{
				{status: s200, desc: "An instance with this id was replaced.", body: typeOf[api.InstanceResult]()},
				{status: s201, desc: "Registered.", body: typeOf[api.InstanceResult]()},
			}, errs(s400, s401, s404, s409, s413, s422, s500)...)},
		{method: "DELETE", path: "/v1/apps/{name}/instances/{id}", id: "deregisterInstance", summary: "Deregister an instance",
			responses: append([]response{{status: s204, desc: "Deregistered."}}, errs(s401, s404, s409, s500)...)},
		{method: "GET", path: "/v1/apps/{name}/metrics", id: "getMetrics", summary: "The app's latest traffic window",
			responses: append([]response{{status: s200, desc: "The window from the metrics service; null before the first.", body: typeOf[api.MetricsView]()}}, errs(s401, s404, s500)...)},
		{method: "GET", path: "/v1/apps/{name}/routes", id: "listRoutes", summary: "List an app's routing rules",
			responses: append([]response{{status: s200, desc: "The rules, in the app's order.", body: typeOf[api.RoutesView]()}}, errs(s401, s404, s500)...)},
		{method: "GET", path: "/v1/apps/{name}/routes/{id}", id: "getRoute", summary: "Get one routing rule",
			responses: append([]response{{status: s200, desc: "The rule.", body: typeOf[events.Rule]()}}, errs(s401, s404, s500)...)},
		{method: "PUT", path: "/v1/apps/{name}/routes/{id}", id: "putRoute", summary: "Add or replace one routing rule",
			desc: "The body is the rule; its id may be left out and must otherwise equal the one in the URL. The app is " +
				"checked with its new rules: a 422 names each bad field (as spec.rules[i]...) and nothing is stored.",
			body: jsonBody("The rule (id optional).", rule),
			responses: append([]response{
				{status: s200, desc: "Replaced.", body: typeOf[api.RouteResult]()},
				{status: s201, desc: "Added.", body: typeOf[api.RouteResult]()},
			}, errs(s400, s401, s404, s409, s413, s422, s500)...)},
		{method: "DELETE", path: "/v1/apps/{name}/routes/{id}", id: "deleteRoute", summary: "Remove one routing rule",
			responses: append([]response{{status: s204, desc: "Removed."}}, errs(s401, s404, s409, s500)...)},
		{method: "GET", path: "/v1/apps/{name}/rollout", id: "getRollout", summary: "How far the app's latest revision has reached the NGINX nodes",
			responses: append([]response{{status: s200, desc: "Per node: the app's revision its live config serves, and whether that is the current one.", body: typeOf[api.RolloutView]()}}, errs(s401, s404, s500)...)},
		{method: "GET", path: "/v1/status", id: "getStatus", summary: "The last render report of every NGINX node",
			responses: append([]response{{status: s200, desc: "Every node, sorted by name.", body: typeOf[api.StatusView]()}}, errs(s401)...)},
		{method: "GET", path: "/v1/nodes/{node}/config", id: "getNodeConfig", summary: "The NGINX configuration a node serves",
			desc: "Asked of the node's renderer over NATS (renderer.config.<node>); the answer is the live configuration's " +
				"files as text, never a certificate or key. 404 when no node of that name answered or it has no live config yet.",
			responses: append([]response{{status: s200, desc: "The live configuration's files.", media: "text/plain", headers: nodeConfigHeaders}},
				errs(s401, s404, s422, s500)...)},
		{method: "GET", path: "/v1/certs", id: "listCerts", summary: "Every TLS domain and its certificate state",
			responses: append([]response{{status: s200, desc: "Every domain, sorted.", body: typeOf[api.CertsView]()}}, errs(s401, s500)...)},
		{method: "GET", path: "/v1/events", id: "listEvents", summary: "The newest events of routing's feed",
			query:     eventQuery(true),
			responses: append([]response{{status: s200, desc: "The newest events that pass the filter, oldest first.", body: typeOf[api.EventsView]()}}, errs(s401, s422)...)},
		{method: "GET", path: "/v1/events/stream", id: "streamEvents", summary: "Follow events as Server-Sent Events",
			desc:  streamDesc,
			query: eventQuery(false),
			headers: []any{map[string]any{"name": "Last-Event-ID", "in": "header", "schema": map[string]any{"type": "string"},
				"description": "Resume after this sequence number (the id of the last event received); ignored when above the feed's newest."}},
			responses: append([]response{{status: s200, desc: "The event stream; it stays open until the client leaves.", media: "text/event-stream"}},
				errs(s401, s422)...)},
		{method: "GET", path: "/v1/openapi.json", id: "getOpenAPI", summary: "This document",
			responses: append([]response{{status: s200, desc: "The OpenAPI 3.1 description of this API.", schema: map[string]any{"type": "object"}}}, errs(s401)...)},
	}
}

// appDocument is the schema of the app file PUT /v1/apps/{name} accepts:
// the app, with the orchestration fields the traffic plane ignores.
func appDocument(c *components) map[string]any {
	underSpec, topLevel := spec.IgnoredFields()
	ignored := map[string]any{"description": "Ignored by the traffic plane: accepted with a warning."}
	c.ref(typeOf[events.AppSpec]())
	appSpec := c.variant("AppSpecDocument", "AppSpec", func(m map[string]any) {
		props, _ := m["properties"].(map[string]any)
		for _, f := range underSpec {
			props[f] = ignored
		}
		delete(m, "required") // a field left out is its zero value
		m["description"] = "The app's spec as an app file holds it: AppSpec (a field left out is its zero value), and the orchestration fields the traffic plane ignores."
	})
	props := map[string]any{
		"apiVersion":  map[string]any{"const": "v1"},
		"kind":        map[string]any{"const": "App"},
		"metadata":    c.ref(typeOf[events.Metadata]()),
		"healthCheck": c.ref(typeOf[events.HealthCheck]()),
		"spec":        appSpec,
	}
	for _, f := range topLevel {
		props[f] = ignored
	}
	return c.add("AppDocument", map[string]any{
		"type":                 "object",
		"description":          "Orchestry's app file (YAML or JSON).",
		"required":             []string{"apiVersion", "kind", "metadata", "spec"},
		"properties":           props,
		"additionalProperties": false,
	})
}

// ruleBody is the schema of PUT /v1/apps/{name}/routes/{id}'s body: a
// Rule whose id may be left out.
func ruleBody(c *components) map[string]any {
	c.ref(typeOf[events.Rule]())
	return c.variant("RuleBody", "Rule", func(m map[string]any) {
		delete(m, "required") // a field left out is its zero value
		m["description"] = "A routing rule; id may be left out, and must otherwise equal the one in the URL. A field left out is its zero value."
	})
}
