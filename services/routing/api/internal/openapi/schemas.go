// Package openapi builds routing's OpenAPI 3.1 document (the API's
// openapi.json) from the Go types the handlers write and read, so the
// published schemas cannot drift from the code: `go generate` in
// services/routing/api writes it, and a test there fails when the file
// differs from Document's output.
package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/invopop/jsonschema"
)

// components collects the JSON Schemas of Go types as OpenAPI component
// schemas, reflected with the same rules as pkg/events' schema files (every
// field without omitempty required, no unknown fields).
type components struct {
	r       *jsonschema.Reflector
	schemas map[string]json.RawMessage
	err     error
}

func newComponents() *components {
	return &components{r: &jsonschema.Reflector{Anonymous: true}, schemas: map[string]json.RawMessage{}}
}

// ref reflects t (and every type it uses) into the components and returns
// a reference to its schema.
func (c *components) ref(t reflect.Type) map[string]any {
	if c.err != nil {
		return nil
	}
	s := c.r.ReflectFromType(t)
	b, err := json.Marshal(s)
	if err != nil {
		c.err = fmt.Errorf("schema of %s: %w", t, err)
		return nil
	}
	b = bytes.ReplaceAll(b, []byte(`"#/$defs/`), []byte(`"#/components/schemas/`))
	var top struct {
		Ref  string                     `json:"$ref"`
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		c.err = fmt.Errorf("schema of %s: %w", t, err)
		return nil
	}
	if top.Ref == "" {
		c.err = fmt.Errorf("schema of %s: not a named struct", t)
		return nil
	}
	for name, def := range top.Defs {
		if old, ok := c.schemas[name]; ok && !bytes.Equal(old, def) {
			c.err = fmt.Errorf("two types named %s have different schemas", name)
			return nil
		}
		c.schemas[name] = def
	}
	return map[string]any{"$ref": top.Ref}
}

// add stores a schema written by hand under name and returns a reference
// to it.
func (c *components) add(name string, schema map[string]any) map[string]any {
	b, err := json.Marshal(schema)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("schema %s: %w", name, err)
	}
	c.schemas[name] = b
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// variant stores under name a copy of component from, changed by edit, and
// returns a reference to it.
func (c *components) variant(name, from string, edit func(schema map[string]any)) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(c.schemas[from], &m); err != nil && c.err == nil {
		c.err = fmt.Errorf("schema %s from %s: %w", name, from, err)
	}
	if m != nil {
		edit(m)
	}
	return c.add(name, m)
}

// typeOf is reflect.TypeFor, short for the operation table.
func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }
