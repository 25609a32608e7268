package cli

import (
	"slices"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestDiff(t *testing.T) {
	base := func() events.App {
		return events.App{Metadata: events.Metadata{Name: "shop"}, Spec: events.AppSpec{
			LBMethod:   "round_robin",
			Networking: events.Networking{ExternalPort: 80, Domain: "shop.example.com"},
		}}
	}
	tests := []struct {
		name   string
		change func(*events.App)
		want   []string
	}{
		{name: "same", change: func(*events.App) {}, want: nil},
		{name: "scalar changed", change: func(a *events.App) { a.Spec.LBMethod = "least_conn" },
			want: []string{"~ spec.lb_method: round_robin -> least_conn"}},
		{name: "field added and number changed", change: func(a *events.App) {
			a.Spec.Retries = &events.Retries{Tries: 3}
			a.Spec.Networking.ExternalPort = 8080
		}, want: []string{"~ spec.networking.external_port: 80 -> 8080", "+ spec.retries: {\"tries\":3}"}},
		{name: "field removed", change: func(a *events.App) { a.Spec.Networking.Domain = "" },
			want: []string{"- spec.networking.domain: shop.example.com"}},
		{name: "header key quoted", change: func(a *events.App) {
			a.Spec.Networking.Headers = map[string]string{"X.Y": "1"}
		}, want: []string{`+ spec.networking.headers: {"X.Y":"1"}`}},
		{name: "labels added", change: func(a *events.App) {
			a.Metadata.Labels = map[string]string{"team": "web"}
		}, want: []string{`+ metadata.labels: {"team":"web"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after := base()
			tt.change(&after)
			changes, err := Diff(base(), after)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDiffGeneric(t *testing.T) {
	old := map[string]any{"a": []any{"x", "y"}, "h": map[string]any{"X.Y": "1", "k": "true"}, "s": ""}
	new := map[string]any{"a": []any{"x", "z", "w"}, "h": map[string]any{"X.Y": "2", "k": true}, "s": "two words", "m": "2m"}
	changes, err := Diff(old, new)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	want := []string{
		`~ a[1]: y -> z`,
		`+ a[2]: w`,
		`~ h.k: "true" -> true`,
		`~ h["X.Y"]: "1" -> "2"`,
		`+ m: 2m`,
		`~ s: "" -> "two words"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
