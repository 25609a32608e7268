package api

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// consolePrefix is where the web console's static assets are served: no
// token, HTML and assets, not part of the REST API nor of its description.
const consolePrefix = "/ui"

var wildcardRE = regexp.MustCompile(`\{([A-Za-z0-9_]+)(\.\.\.)?\}`)

// specPath turns a ServeMux pattern into an OpenAPI path template
// ({rest...} becomes {rest}; a trailing {$} is dropped).
func specPath(pattern string) string {
	return wildcardRE.ReplaceAllString(strings.TrimSuffix(pattern, "{$}"), "{$1}")
}

// TestSpecCoversRoutes holds openapi.json and the route table equal: every
// route is documented and every documented operation is served.
func TestSpecCoversRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	methods := []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}
	var documented []string
	for path, item := range doc.Paths {
		for m := range item {
			if slices.Contains(methods, m) {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	var served []string
	for _, rt := range routes {
		if rt.pattern == consolePrefix || strings.HasPrefix(rt.pattern, consolePrefix+"/") {
			continue
		}
		served = append(served, rt.method+" "+specPath(rt.pattern))
	}
	for _, op := range served {
		if !slices.Contains(documented, op) {
			t.Errorf("route %s is not in openapi.json: describe it in internal/openapi and run go generate", op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("openapi.json documents %s, which no route serves", op)
		}
	}
	slices.Sort(served)
	if dup := slices.Compact(slices.Clone(served)); len(dup) != len(served) {
		t.Errorf("a route is listed twice: %v", served)
	}
}

func TestSpecPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/apps/{name}":         "/v1/apps/{name}",
		"/v1/files/{path...}":     "/v1/files/{path}",
		"/v1/apps/{$}":            "/v1/apps/",
		"/v1/nodes/{node}/config": "/v1/nodes/{node}/config",
	} {
		if got := specPath(in); got != want {
			t.Errorf("specPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestErrorCodesDocumented holds the error body's documented codes equal
// to the Code constants.
func TestErrorCodesDocumented(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Properties map[string]struct {
			Enum []string `json:"enum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(doc.Components.Schemas["ErrorBody"], &body); err != nil {
		t.Fatal(err)
	}
	got := body.Properties["code"].Enum
	want := []string{CodeValidation, CodeNotFound, CodeUnauthorized, CodeConflict, CodeBadRequest, CodeInternal}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("documented codes %v, want %v", got, want)
	}
}
