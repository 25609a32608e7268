// Package spec turns an Orchestry app file (YAML or JSON) into the traffic
// part of the app, events.App. It accepts Orchestry's own app.yml as it is:
// orchestration-only fields are dropped with a warning, any other unknown
// field is refused, and every invalid field is reported by its path.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/orchestry/orchestry/pkg/events"
)

// ErrMalformed wraps every reason a body cannot be read as a document at all
// (not YAML or JSON, not an object). Field-level problems are reported as an
// events.ValidationError instead.
var ErrMalformed = errors.New("malformed app file")

// ErrMediaType is returned for a Content-Type that is neither YAML nor JSON.
var ErrMediaType = errors.New("unsupported media type")

// APIVersion and Kind are the only accepted values of the document header.
const (
	APIVersion = "v1"
	Kind       = "App"
)

// ignoredSpec are Orchestry's orchestration fields under spec that the
// traffic plane accepts and ignores.
var ignoredSpec = []string{"type", "image", "ports", "resources", "environment", "command", "args", "workingDir", "volumes"}

// ignoredTop are top-level orchestration fields accepted and ignored.
var ignoredTop = []string{"scaling"}

// IgnoredFields returns the orchestration fields an app file may hold that
// the traffic plane accepts with a warning and ignores: those under spec,
// and those at the top level.
func IgnoredFields() (underSpec, topLevel []string) {
	return slices.Clone(ignoredSpec), slices.Clone(ignoredTop)
}

// document is the accepted shape of an app file once ignored fields are gone.
type document struct {
	APIVersion  string              `json:"apiVersion"`
	Kind        string              `json:"kind"`
	Metadata    events.Metadata     `json:"metadata"`
	HealthCheck *events.HealthCheck `json:"healthCheck,omitempty"`
	Spec        events.AppSpec      `json:"spec"`
}

// Parse reads an app file sent with contentType (empty to sniff) for the app
// called name. It returns the declared app and one warning per ignored field.
// The error is ErrMediaType or ErrMalformed (wrapped), or an
// events.ValidationError listing every bad field; nothing partial is returned
// with an error.
func Parse(body []byte, contentType, name string) (events.App, []string, error) {
	raw, err := toJSON(body, contentType)
	if err != nil {
		return events.App{}, nil, err
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return events.App{}, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	top, ok := tree.(map[string]any)
	if !ok {
		return events.App{}, nil, fmt.Errorf("%w: the document must be an object", ErrMalformed)
	}
	warnings := dropIgnored(top)
	var bad events.ValidationError
	bad = append(bad, Mismatches(top, document{})...)
	if len(bad) > 0 {
		return events.App{}, warnings, bad
	}
	var doc document
	if fe := StrictDecode(top, &doc); fe != nil {
		return events.App{}, warnings, events.ValidationError{*fe}
	}
	if doc.APIVersion != APIVersion {
		bad = append(bad, events.FieldError{Field: "apiVersion", Reason: fmt.Sprintf("must be %q", APIVersion)})
	}
	if doc.Kind != Kind {
		bad = append(bad, events.FieldError{Field: "kind", Reason: fmt.Sprintf("must be %q", Kind)})
	}
	app := events.App{Metadata: doc.Metadata, HealthCheck: doc.HealthCheck, Spec: doc.Spec}
	nameChecked := false
	if err := app.Validate(); err != nil {
		var ve events.ValidationError
		if !errors.As(err, &ve) {
			return events.App{}, warnings, fmt.Errorf("validate %s: %w", name, err)
		}
		for _, fe := range ve {
			nameChecked = nameChecked || fe.Field == "metadata.name"
		}
		bad = append(bad, ve...)
	}
	if !nameChecked && app.Metadata.Name != name {
		bad = append(bad, events.FieldError{Field: "metadata.name", Reason: fmt.Sprintf("must equal the name in the URL (%q)", name)})
	}
	if len(bad) > 0 {
		return events.App{}, warnings, bad
	}
	return app, warnings, nil
}

// toJSON converts body to JSON according to contentType.
func toJSON(body []byte, contentType string) ([]byte, error) {
	media := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, fmt.Errorf("%w: %q", ErrMediaType, contentType)
		}
		media = mt
	}
	switch media {
	case "application/json":
		return bytes.TrimSpace(body), nil
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "":
		// YAML is a superset of JSON, so a sniffed JSON body converts too.
		out, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %q (use application/yaml or application/json)", ErrMediaType, media)
}

// dropIgnored removes the orchestration-only fields from the document and
// returns a warning for each one that was present, in a stable order.
func dropIgnored(top map[string]any) []string {
	warnings := []string{}
	if s, ok := top["spec"].(map[string]any); ok {
		for _, k := range ignoredSpec {
			if _, ok := s[k]; ok {
				delete(s, k)
				warnings = append(warnings, "spec."+k+" is ignored by the traffic plane")
			}
		}
	}
	for _, k := range ignoredTop {
		if _, ok := top[k]; ok {
			delete(top, k)
			warnings = append(warnings, k+" is ignored by the traffic plane")
		}
	}
	return warnings
}

// StrictDecode re-encodes a generic JSON tree and decodes it into v, refusing
// unknown fields. A failure is returned as one FieldError naming the path.
func StrictDecode(tree any, v any) *events.FieldError {
	b, err := json.Marshal(tree)
	if err != nil {
		return &events.FieldError{Field: "", Reason: err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeFieldError(err)
	}
	return nil
}

// decodeFieldError turns an encoding/json error into a FieldError.
func decodeFieldError(err error) *events.FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &events.FieldError{Field: te.Field, Reason: fmt.Sprintf("must be %s, not %s", typeName(te.Type.Kind().String()), te.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &events.FieldError{Field: strings.Trim(f, `"`), Reason: "unknown field"}
	}
	return &events.FieldError{Field: "", Reason: msg}
}

// typeName says a Go kind in the words of a JSON or YAML user.
func typeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "a list"
	}
	return kind
}
