package cli

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Change is one field that differs between two versions of a document.
type Change struct {
	// Op is "+" (added), "-" (removed) or "~" (changed).
	Op   string
	Path string
	// Old and New are the values as shown (JSON for objects and lists,
	// bare for simple strings); empty on the side where the field is absent.
	Old, New string
}

// String renders the change as "~ spec.lb_method: round_robin -> least_conn".
func (c Change) String() string {
	switch c.Op {
	case "+":
		return fmt.Sprintf("+ %s: %s", c.Path, c.New)
	case "-":
		return fmt.Sprintf("- %s: %s", c.Path, c.Old)
	}
	return fmt.Sprintf("~ %s: %s -> %s", c.Path, c.Old, c.New)
}

// Diff returns the field-level changes from old to new (both marshalled to
// JSON first), sorted by path. Objects are compared key by key and lists
// item by item; a field set to its zero value and an absent one differ
// only when the JSON does.
func Diff(old, new any) ([]Change, error) {
	o, err := generic(old)
	if err != nil {
		return nil, err
	}
	n, err := generic(new)
	if err != nil {
		return nil, err
	}
	var out []Change
	diffValue("", o, n, &out)
	slices.SortStableFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// generic turns v into maps, slices and scalars through JSON.
func generic(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("diff: encode: %w", err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("diff: decode: %w", err)
	}
	return out, nil
}

func diffValue(path string, o, n any, out *[]Change) {
	om, oIsMap := o.(map[string]any)
	nm, nIsMap := n.(map[string]any)
	if oIsMap && nIsMap {
		keys := make([]string, 0, len(om)+len(nm))
		for k := range om {
			keys = append(keys, k)
		}
		for k := range nm {
			if _, ok := om[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			ov, inOld := om[k]
			nv, inNew := nm[k]
			p := joinPath(path, k)
			switch {
			case !inOld:
				*out = append(*out, Change{Op: "+", Path: p, New: show(nv)})
			case !inNew:
				*out = append(*out, Change{Op: "-", Path: p, Old: show(ov)})
			default:
				diffValue(p, ov, nv, out)
			}
		}
		return
	}
	ol, oIsList := o.([]any)
	nl, nIsList := n.([]any)
	if oIsList && nIsList {
		for i := 0; i < max(len(ol), len(nl)); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= len(ol):
				*out = append(*out, Change{Op: "+", Path: p, New: show(nl[i])})
			case i >= len(nl):
				*out = append(*out, Change{Op: "-", Path: p, Old: show(ol[i])})
			default:
				diffValue(p, ol[i], nl[i], out)
			}
		}
		return
	}
	if s1, s2 := show(o), show(n); s1 != s2 {
		*out = append(*out, Change{Op: "~", Path: path, Old: s1, New: s2})
	}
}

// plainKey is a key written as is in a path; others are quoted in brackets.
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func joinPath(path, key string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// bareString is a string that may be shown without quotes: no spaces,
// quotes or brackets (and, checked in show, not a number, boolean or null).
var bareString = regexp.MustCompile(`^[^\s"'{}\[\],]+$`)

// show renders a value for a diff line: a string bare when it cannot be
// taken for anything else, other values as JSON.
func show(v any) string {
	if s, ok := v.(string); ok && bareString.MatchString(s) && !json.Valid([]byte(s)) {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
