package cli

import (
	"strings"
	"testing"
)

func TestParseManifests(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		wantNames []string
		wantTypes []string
		wantSrc   []string
		wantErr   string
	}{
		{name: "yaml", data: "apiVersion: v1\nkind: App\nmetadata:\n  name: shop\nspec: {}\n",
			wantNames: []string{"shop"}, wantTypes: []string{"application/yaml"}, wantSrc: []string{"app.yaml"}},
		{name: "json", data: ` {"apiVersion":"v1","kind":"App","metadata":{"name":"api"}}`,
			wantNames: []string{"api"}, wantTypes: []string{"application/json"}, wantSrc: []string{"app.yaml"}},
		{name: "several documents", data: "---\nmetadata:\n  name: a\n---\n---\nmetadata:\n  name: b\n",
			wantNames: []string{"a", "b"}, wantTypes: []string{"application/yaml", "application/yaml"}, wantSrc: []string{"app.yaml#1", "app.yaml#2"}},
		{name: "no name", data: "kind: App\nmetadata: {}\n", wantErr: "app.yaml: metadata.name is required"},
		{name: "name not a string", data: "metadata:\n  name: [x]\n", wantErr: "metadata.name is required"},
		{name: "empty", data: " \n", wantErr: "app.yaml: the file is empty"},
		{name: "only separators", data: "---\n---\n", wantErr: "no document"},
		{name: "not yaml", data: "a: [1\n", wantErr: "not YAML or JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := ParseManifests("app.yaml", []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != len(tt.wantNames) {
				t.Fatalf("%d manifests, want %d", len(ms), len(tt.wantNames))
			}
			for i, m := range ms {
				if m.Name != tt.wantNames[i] || m.ContentType != tt.wantTypes[i] || m.Source != tt.wantSrc[i] {
					t.Errorf("manifest %d: %s %s %s", i, m.Name, m.ContentType, m.Source)
				}
				if name, err := manifestName(m.Body); err != nil || name != m.Name {
					t.Errorf("manifest %d body does not name %s: %q %v", i, m.Name, m.Body, err)
				}
			}
		})
	}
}

func TestApplyResultString(t *testing.T) {
	r := ApplyResult{Name: "shop", Action: "configured", Revision: 7}
	if got := r.String(); got != "app/shop configured (revision 7)" {
		t.Errorf("got %q", got)
	}
}
