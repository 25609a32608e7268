package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/orchestry/orchestry/services/routing/api"
)

// Version is the OpenAPI version of the document.
const Version = "3.1.0"

// response is one documented answer of an operation: a status and either
// a JSON body of a Go type, a reusable error response, or another media
// type.
type response struct {
	status  int
	desc    string
	body    reflect.Type   // JSON body
	schema  map[string]any // JSON body written by hand (types not in Go)
	media   string         // non-JSON body (text/plain, text/event-stream)
	headers map[string]any // response headers
}

// param is a query parameter.
type param struct {
	name, desc string
	schema     map[string]any
}

// operation is one method on one path.
type operation struct {
	method, path, id, summary, desc string
	query                           []param
	headers                         []any          // header parameters
	body                            map[string]any // requestBody, nil for none
	responses                       []response
}

// errorResponses are the reusable error answers, by status: every error
// has the ErrorBody shape.
var errorResponses = map[int]struct{ name, desc string }{
	http.StatusBadRequest:            {"BadRequest", "The body cannot be read or is not a JSON (or YAML) object (code BAD_REQUEST)."},
	http.StatusUnauthorized:          {"Unauthorized", "No bearer token, or the wrong one (code UNAUTHORIZED). Sent with WWW-Authenticate: Bearer realm=\"orchestry\"."},
	http.StatusNotFound:              {"NotFound", "No such app, instance, routing rule or endpoint (code NOT_FOUND)."},
	http.StatusConflict:              {"Conflict", "Another app already serves this external port and domain (code CONFLICT, detail on spec.networking.domain), or too many concurrent changes of the same app (code CONFLICT): retry."},
	http.StatusRequestEntityTooLarge: {"TooLarge", "The body is larger than the API's limit (ORCHESTRY_API_MAX_BODY_BYTES, 1 MiB by default; code BAD_REQUEST)."},
	http.StatusUnsupportedMediaType:  {"UnsupportedMediaType", "The Content-Type is neither YAML nor JSON (code BAD_REQUEST)."},
	http.StatusUnprocessableEntity:   {"Validation", "Invalid fields: details names each one by its path (code VALIDATION_ERROR). Nothing was stored."},
	http.StatusInternalServerError:   {"Internal", "NATS or the KV store failed (code INTERNAL); the cause is logged, not returned."},
}

// Document returns the OpenAPI document of routing's REST API, indented,
// with a final newline.
func Document() ([]byte, error) {
	c := newComponents()
	errRef := c.ref(typeOf[api.ErrorBody]())
	ops := operations(c)
	paths := map[string]map[string]any{}
	for _, op := range ops {
		item := paths[op.path]
		if item == nil {
			item = map[string]any{}
			paths[op.path] = item
		}
		item[strings.ToLower(op.method)] = op.render(c)
	}
	responses := map[string]any{}
	for code, e := range errorResponses {
		r := map[string]any{
			"description": e.desc,
			"content":     map[string]any{"application/json": map[string]any{"schema": errRef}},
		}
		if code == http.StatusUnauthorized {
			r["headers"] = map[string]any{"WWW-Authenticate": map[string]any{
				"description": `Bearer realm="orchestry"`, "schema": map[string]any{"type": "string"},
			}}
		}
		responses[e.name] = r
	}
	if c.err != nil {
		return nil, c.err
	}
	doc := map[string]any{
		"openapi":           Version,
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info": map[string]any{
			"title":   "Orchestry routing API",
			"version": "v1",
			"description": "Routing's REST API: apps, their instances and routing rules, traffic, " +
				"certificates, the render status of every NGINX node and the event log. Every " +
				"operation, this document included, needs `Authorization: Bearer <token>` " +
				"(ORCHESTRY_API_TOKEN); only the web console's static assets under /ui are " +
				"served without it, and they are not part of this API. Every error has the " +
				"ErrorBody shape; a path or method no operation serves answers 404 (code NOT_FOUND). Component schemas are generated from the Go types (the event " +
				"payloads with the same rules as pkg/events/schema), so they list every field " +
				"and refuse unknown ones.",
		},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"bearer": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"schemas":   c.schemas,
			"responses": responses,
			"securitySchemes": map[string]any{"bearer": map[string]any{
				"type": "http", "scheme": "bearer",
				"description": "The API token (ORCHESTRY_API_TOKEN; in the all-in-one, the file .data/api-token).",
			}},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

var pathParamRE = regexp.MustCompile(`\{([a-z]+)\}`)

// pathParams describes the parameters in a path template.
var pathParams = map[string]string{
	"name": "The app's name (metadata.name): a lowercase DNS label.",
	"id":   "The instance's or routing rule's id.",
	"node": "The NGINX node's name (a lowercase DNS label).",
}

func (op operation) render(c *components) map[string]any {
	out := map[string]any{"operationId": op.id, "summary": op.summary}
	if op.desc != "" {
		out["description"] = op.desc
	}
	params := op.headers
	for _, m := range pathParamRE.FindAllStringSubmatch(op.path, -1) {
		params = append(params, map[string]any{
			"name": m[1], "in": "path", "required": true,
			"description": pathParams[m[1]], "schema": map[string]any{"type": "string"},
		})
	}
	for _, q := range op.query {
		params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.desc, "schema": q.schema})
	}
	if params != nil {
		out["parameters"] = params
	}
	if op.body != nil {
		out["requestBody"] = op.body
	}
	responses := map[string]any{}
	codes := make([]int, 0, len(op.responses))
	for _, r := range op.responses {
		codes = append(codes, r.status)
		key := strconv.Itoa(r.status)
		if e, ok := errorResponses[r.status]; ok && r.body == nil && r.schema == nil && r.media == "" {
			responses[key] = map[string]any{"$ref": "#/components/responses/" + e.name}
			continue
		}
		v := map[string]any{"description": r.desc}
		if r.headers != nil {
			v["headers"] = r.headers
		}
		switch {
		case r.body != nil:
			v["content"] = map[string]any{"application/json": map[string]any{"schema": c.ref(r.body)}}
		case r.schema != nil:
			v["content"] = map[string]any{"application/json": map[string]any{"schema": r.schema}}
		case r.media != "":
			v["content"] = map[string]any{r.media: map[string]any{"schema": map[string]any{"type": "string"}}}
		}
		responses[key] = v
	}
	if len(slices.Compact(slices.Sorted(slices.Values(codes)))) != len(codes) && c.err == nil {
		c.err = fmt.Errorf("operation %s %s lists a status twice", op.method, op.path)
	}
	out["responses"] = responses
	return out
}
