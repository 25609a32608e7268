package spec

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"

	"github.com/orchestry/orchestry/pkg/events"
)

// Mismatches walks a generic JSON tree (maps, slices, scalars) against the
// Go type of shape and returns one FieldError per field the type does not
// have, and per value whose JSON type does not fit (a string where a number
// goes), named by its full path with list indexes (e.g.
// spec.networking.domian, spec.rules[1].priority). Field names match
// exactly, as written in the JSON tags. A null is left to the decoder.
func Mismatches(tree any, shape any) events.ValidationError {
	var out events.ValidationError
	walk(tree, reflect.TypeOf(shape), "", &out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func walk(v any, t reflect.Type, path string, out *events.ValidationError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return
	}
	wrong := func(want string) {
		*out = append(*out, events.FieldError{Field: path, Reason: fmt.Sprintf("must be %s, not %s", want, jsonKind(v))})
	}
	switch t.Kind() {
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			wrong("a boolean")
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			wrong("a string")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if f, ok := v.(float64); !ok || f != math.Trunc(f) {
			wrong("an integer")
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); !ok {
			wrong("a number")
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			wrong("an object")
			return
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
			wrong("an object")
			return
		}
		for k, child := range obj {
			walk(child, t.Elem(), join(path, k), out)
		}
	case reflect.Slice, reflect.Array:
		list, ok := v.([]any)
		if !ok {
			wrong("a list")
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

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch x := v.(type) {
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case float64:
		if x == math.Trunc(x) {
			return "an integer"
		}
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
