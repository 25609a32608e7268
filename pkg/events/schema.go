package events

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/invopop/jsonschema"
	sjs "github.com/santhosh-tekuri/jsonschema/v6"
)

//go:generate go run ./internal/schemagen -out schema

// schemaFS holds the published JSON Schema files. TestSchemaFilesMatchTypes
// holds them equal to what Schemas derives from the Go types.
//
//go:embed schema/*.json
var schemaFS embed.FS

const envelopeSchemaFile = "envelope.v1.json"

// Schemas derives the JSON Schema of the envelope and of every event payload
// from the Go types, keyed by file name. `go generate` writes them to schema/.
func Schemas() (map[string][]byte, error) {
	r := &jsonschema.Reflector{ExpandedStruct: true}
	out := map[string][]byte{}
	add := func(file, title string, t reflect.Type) error {
		s := r.ReflectFromType(t)
		s.ID = jsonschema.ID(SchemaURI(file))
		s.Title = title
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return fmt.Errorf("schema %s: %w", file, err)
		}
		out[file] = append(b, '\n')
		return nil
	}
	if err := add(envelopeSchemaFile, "CloudEvents 1.0 envelope (structured JSON)", reflect.TypeFor[Envelope]()); err != nil {
		return nil, err
	}
	for _, k := range kinds {
		if err := add(k.schema, k.typ, k.goType); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var (
	compileOnce sync.Once
	compiled    map[string]*sjs.Schema
	compileErr  error
)

func compileSchemas() {
	c := sjs.NewCompiler()
	files := append([]string{envelopeSchemaFile}, kindSchemaFiles()...)
	for _, f := range files {
		raw, err := schemaFS.ReadFile("schema/" + f)
		if err != nil {
			compileErr = fmt.Errorf("schema %s: %w", f, err)
			return
		}
		doc, err := sjs.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			compileErr = fmt.Errorf("schema %s: %w", f, err)
			return
		}
		if err := c.AddResource(SchemaURI(f), doc); err != nil {
			compileErr = fmt.Errorf("schema %s: %w", f, err)
			return
		}
	}
	compiled = map[string]*sjs.Schema{}
	for _, f := range files {
		s, err := c.Compile(SchemaURI(f))
		if err != nil {
			compileErr = fmt.Errorf("compile schema %s: %w", f, err)
			return
		}
		compiled[f] = s
	}
}

func kindSchemaFiles() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.schema
	}
	return out
}

// validateSchema checks raw JSON against the named schema file.
func validateSchema(file string, raw []byte) error {
	compileOnce.Do(compileSchemas)
	if compileErr != nil {
		return compileErr
	}
	doc, err := sjs.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := compiled[file].Validate(doc); err != nil {
		return flattenSchemaError(err)
	}
	return nil
}

// flattenSchemaError turns the validator's tree into one line naming the
// failing locations.
func flattenSchemaError(err error) error {
	ve, ok := err.(*sjs.ValidationError)
	if !ok {
		return err
	}
	var leaves []string
	var walk func(e *sjs.ValidationError)
	walk = func(e *sjs.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/"
			if len(e.InstanceLocation) > 0 {
				loc = ""
				for _, t := range e.InstanceLocation {
					loc += "/" + t
				}
			}
			leaves = append(leaves, fmt.Sprintf("%s: %s", loc, e.ErrorKind))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	msg := leaves[0]
	for _, l := range leaves[1:] {
		msg += "; " + l
	}
	return fmt.Errorf("schema: %s", msg)
}
