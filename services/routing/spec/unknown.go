package spec

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/orchestry/orchestry/pkg/events"
)

// Unknown walks a generic JSON tree (maps, slices, scalars) against the Go
// type of shape and returns one FieldError per field the type does not
// have, named by its full path (e.g. spec.networking.domian). Field names
// match exactly, as written in the JSON tags.
func Unknown(tree any, shape any) events.ValidationError {
	var out events.ValidationError
	walk(tree, reflect.TypeOf(shape), "", &out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func walk(v any, t reflect.Type, path string, out *events.ValidationError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return // a type mismatch; the strict decode reports it
		}
		fields := jsonFields(t)
		for k, child := range obj {
			ft, ok := fields[k]
			if !ok {
				*out = append(*out, events.FieldError{Field: join(path, k), Reason: "unknown field"})
				continue
			}
			walk(child, ft, join(path, k), out)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, child := range obj {
			walk(child, t.Elem(), join(path, k), out)
		}
	case reflect.Slice, reflect.Array:
		list, ok := v.([]any)
		if !ok {
			return
		}
		for i, child := range list {
			walk(child, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
