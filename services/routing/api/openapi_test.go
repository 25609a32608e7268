package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	sjs "github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/api/internal/openapi"
)

// TestOpenAPIFileIsGenerated fails when openapi.json is not what the
// generator derives from the Go types now.
func TestOpenAPIFileIsGenerated(t *testing.T) {
	want, err := openapi.Document()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(api.OpenAPI, want) {
		t.Fatal("openapi.json is out of date: run go generate ./services/routing/api")
	}
}

// TestOpenAPIIsValid loads the document as OpenAPI 3.1 and validates it:
// references resolve, every path parameter is declared, and so on.
func TestOpenAPIIsValid(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if doc.Components.SecuritySchemes["bearer"] == nil || len(doc.Security) != 1 {
		t.Error("no global bearer security")
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Responses.Value("401") == nil {
				t.Errorf("%s %s does not document 401", method, path)
			}
		}
	}
}

// specURL is the document's base URI for the validator.
const specURL = "https://orchestry.dev/routing/openapi.json"

// spec checks answers against openapi.json and remembers which status of
// which operation it saw.
type spec struct {
	t    *testing.T
	doc  map[string]any
	c    *sjs.Compiler
	seen map[string]bool // "GET /v1/apps 200"
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	raw, err := sjs.UnmarshalJSON(bytes.NewReader(api.OpenAPI))
	if err != nil {
		t.Fatal(err)
	}
	c := sjs.NewCompiler()
	c.DefaultDraft(sjs.Draft2020)
	if err := c.AddResource(specURL, raw); err != nil {
		t.Fatal(err)
	}
	return &spec{t: t, doc: doc, c: c, seen: map[string]bool{}}
}

// pointer escapes a JSON Pointer token for a URI fragment.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, tok := range tokens {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
		b.WriteString("/" + url.PathEscape(tok))
	}
	return b.String()
}

// operation returns the operation object of method on the path template.
func (s *spec) operation(method, template string) map[string]any {
	paths, _ := s.doc["paths"].(map[string]any)
	item, _ := paths[template].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

// check holds one answer of method on template to the document: its
// status is one the operation lists, its Content-Type one the response
// lists, and a JSON body is valid against the response's schema.
func (s *spec) check(method, template string, code int, header http.Header, body []byte) {
	t := s.t
	t.Helper()
	op := s.operation(method, template)
	if op == nil {
		t.Errorf("%s %s: not in openapi.json", method, template)
		return
	}
	s.seen[method+" "+template+" "+strconv.Itoa(code)] = true
	responses, _ := op["responses"].(map[string]any)
	resp, _ := responses[strconv.Itoa(code)].(map[string]any)
	if resp == nil {
		t.Errorf("%s %s answered %d, which openapi.json does not list (body %.200s)", method, template, code, body)
		return
	}
	base := pointer("paths", template, strings.ToLower(method), "responses", strconv.Itoa(code))
	if ref, ok := resp["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/responses/")
		resp, _ = s.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
		base = pointer("components", "responses", name)
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			t.Errorf("%s %s %d: a body (%.200s) where openapi.json documents none", method, template, code, body)
		}
		return
	}
	media, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || content[media] == nil {
		t.Errorf("%s %s %d: Content-Type %q is not documented", method, template, code, header.Get("Content-Type"))
		return
	}
	if media != "application/json" {
		return
	}
	sch, err := s.c.Compile(specURL + "#" + base + pointer("content", media, "schema"))
	if err != nil {
		t.Fatalf("%s %s %d: compile schema: %v", method, template, code, err)
	}
	v, err := sjs.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s %s %d: body is not JSON: %v", method, template, code, err)
		return
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s %s %d: body does not match openapi.json: %v\nbody: %s", method, template, code, err, body)
	}
}

// checkSchema validates a JSON document against the schema at fragment
// of the document.
func (s *spec) checkSchema(what, fragment string, doc []byte) {
	s.t.Helper()
	sch, err := s.c.Compile(specURL + fragment)
	if err != nil {
		s.t.Fatalf("%s: compile %s: %v", what, fragment, err)
	}
	v, err := sjs.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		s.t.Errorf("%s: not JSON: %v", what, err)
		return
	}
	if err := sch.Validate(v); err != nil {
		s.t.Errorf("%s does not match %s: %v\n%s", what, fragment, err, doc)
	}
}

// checkRequest validates an accepted request's body against the
// operation's documented request body (YAML converted to JSON).
func (s *spec) checkRequest(c call) {
	s.t.Helper()
	media, _, _ := mime.ParseMediaType(c.ctype)
	body := []byte(c.body)
	if media == "application/yaml" {
		var err error
		if body, err = yaml.YAMLToJSON(body); err != nil {
			s.t.Fatal(err)
		}
	}
	op := s.operation(c.method, c.template)
	rb, _ := op["requestBody"].(map[string]any)
	content, _ := rb["content"].(map[string]any)
	if content[media] == nil {
		s.t.Errorf("%s %s: request Content-Type %q is not documented", c.method, c.template, c.ctype)
		return
	}
	frag := "#" + pointer("paths", c.template, strings.ToLower(c.method), "requestBody", "content", media, "schema")
	s.checkSchema(c.method+" "+c.path+" request", frag, body)
}

// firstEventData reads a Server-Sent Events stream up to its first data
// line and returns that data, or nil when none comes within two seconds.
func firstEventData(r io.Reader) []byte {
	found := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				found <- []byte(data)
				return
			}
		}
		found <- nil
	}()
	select {
	case data := <-found:
		return data
	case <-time.After(2 * time.Second):
		return nil
	}
}

// call is one request and the status it must produce.
type call struct {
	method, path, template string
	ctype, body            string
	noToken                bool
	want                   int
}

// send makes the request, checks its status and its answer against the
// document. It reports false, without checking, when no route serves it
// (an operation documented before its handler exists: TestSpecCoversRoutes
// fails for it).
func (e *env) send(s *spec, c call) bool {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends an event stream
	req, err := http.NewRequestWithContext(ctx, c.method, e.url+c.path, strings.NewReader(c.body))
	if err != nil {
		e.t.Fatal(err)
	}
	if !c.noToken {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body []byte
	if media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); media == "text/event-stream" {
		// A stream that does not end: check its first event's data.
		if data := firstEventData(resp.Body); data != nil {
			s.checkSchema("event stream data", "#/components/schemas/EventRecord", data)
		}
	} else {
		body, _ = io.ReadAll(resp.Body)
	}
	if resp.StatusCode == http.StatusNotFound && bytes.Contains(body, []byte(`"no such endpoint: `)) {
		e.t.Logf("%s %s: no route serves it yet", c.method, c.template)
		return false
	}
	if c.body != "" && resp.StatusCode < 300 {
		s.checkRequest(c)
	}
	if resp.StatusCode != c.want {
		e.t.Errorf("%s %s: %d, want %d (body %.300s)", c.method, c.path, resp.StatusCode, c.want, body)
	}
	s.check(c.method, c.template, resp.StatusCode, resp.Header, body)
	return true
}
