package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/feed"
	"github.com/orchestry/orchestry/services/routing/status"
)

func TestJSONToYAMLKeepsOrderAndTypes(t *testing.T) {
	got, err := jsonToYAML([]byte(`{"z":1,"a":{"s":"true","n":"12","e":"","f":1.5,"b":false,"x":null},"l":["a",2]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `z: 1
a:
  s: "true"
  n: "12"
  e: ""
  f: 1.5
  b: false
  x: null
l:
  - a
  - 2
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteRaw(t *testing.T) {
	for _, tt := range []struct {
		format, want string
	}{
		{FormatJSON, "{\n  \"apps\": []\n}\n"},
		{FormatYAML, "apps: []\n"},
	} {
		var buf bytes.Buffer
		if err := writeRaw(&buf, tt.format, []byte(`{"apps":[]}`)); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.format, buf.String(), tt.want)
		}
	}
	if err := checkFormat("xml", FormatTable, FormatJSON); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "table, json") {
		t.Errorf("checkFormat(xml) = %v", err)
	}
}

func TestTables(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	apps := []api.AppView{
		{App: events.App{Metadata: events.Metadata{Name: "shop"}, Spec: events.AppSpec{LBMethod: "least_conn",
			Networking: events.Networking{ExternalPort: 80, Domain: "shop.example.com"}}},
			Instances: make([]events.Instance, 2), Revision: 12},
		{App: events.App{Metadata: events.Metadata{Name: "a"}}, Revision: 3},
	}
	ins := []api.InstanceView{
		{Instance: events.Instance{ID: "web-1", IP: "10.0.0.1", Port: 8080, Weight: 2},
			Health: &events.HealthState{State: "unhealthy", Since: now.Add(-90 * time.Second), ConsecutiveFailures: 3, LastError: "connection refused"}},
		{Instance: events.Instance{ID: "web-2", IP: "::1", Port: 9000, Draining: true}},
	}
	nodes := []status.Node{{RenderReport: events.RenderReport{Node: "nginx-1", Version: 7, Outcome: "applied", Apps: 2, Hash: "0123456789abcdef0123"},
		ReceivedAt: now.Add(-3 * time.Hour), ServedRevisions: map[string]uint64{"shop": 12, "a": 3}}}
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  string
	}{
		{"apps", func(b *bytes.Buffer) error { return writeApps(b, apps, false) }, `
NAME   DOMAIN             PORT   LB           INSTANCES   REVISION
shop   shop.example.com   80     least_conn   2           12
a      -                  -      -            0           3
`},
		{"instances wide", func(b *bytes.Buffer) error { return writeInstances(b, ins, true, now) }, `
ID      ADDRESS         WEIGHT   HEALTH      SINCE   BACKUP   DRAINING   LOAD BAND   FAILURES   LAST ERROR
web-1   10.0.0.1:8080   2        unhealthy   90s     no       no         -           3          connection refused
web-2   [::1]:9000      -        draining    -       no       yes        -           -          -
`},
		{"nodes wide", func(b *bytes.Buffer) error { return writeNodes(b, nodes, true, now) }, `
NODE      VERSION   OUTCOME   APPS   HASH           REPORTED   ATTEMPTED   STATUS ADDR   SERVED        PROBLEMS   ERROR
nginx-1   7         applied   2      0123456789ab   3h         0           -             a=3,shop=12   0          -
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.write(&buf); err != nil {
				t.Fatal(err)
			}
			if got := "\n" + buf.String(); got != tt.want {
				t.Errorf("got%s\nwant%s", got, tt.want)
			}
		})
	}
}

func TestAge(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{5 * time.Second, "5s"}, {3 * time.Minute, "3m"}, {5 * time.Hour, "5h"}, {72 * time.Hour, "3d"}, {-time.Second, "0s"}} {
		if got := age(now.Add(-tt.d), now); got != tt.want {
			t.Errorf("age(%s) = %s, want %s", tt.d, got, tt.want)
		}
	}
	if age(time.Time{}, now) != "" {
		t.Error("zero time has an age")
	}
}

func TestEventLine(t *testing.T) {
	e := feed.EventRecord{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Subject: "instance.registered.shop", Summary: "web-1 at 10.0.0.1:8080"}
	want := "2026-01-02T02:04:05Z  instance.registered.shop              web-1 at 10.0.0.1:8080"
	if got := EventLine(e); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	var buf bytes.Buffer
	if err := writeEvent(&buf, FormatJSON, []byte("{\n \"seq\": 1\n}")); err != nil || buf.String() != "{\"seq\":1}\n" {
		t.Errorf("json line %q, %v", buf.String(), err)
	}
}

func TestPairs(t *testing.T) {
	if got := pairs(map[string]string{"tier": "web", "env": "prod"}); got != "env=prod,tier=web" {
		t.Errorf("labels %q", got)
	}
	if got := pairs(map[string]uint64{"shop": 12, "a": 3}); got != "a=3,shop=12" {
		t.Errorf("served revisions %q", got)
	}
	if got := pairs(map[string]string(nil)); got != "" {
		t.Errorf("no labels %q", got)
	}
}

// TestStatusNode holds status -o json to the API's node, but for an empty
// served_revisions, which it leaves out.
func TestStatusNode(t *testing.T) {
	n := status.Node{RenderReport: events.RenderReport{Node: "nginx-1", Version: 7}, ReceivedAt: time.Unix(0, 0).UTC(),
		ServedRevisions: map[string]uint64{"shop": 12}}
	want, _ := json.Marshal(n)
	if got, _ := json.Marshal(statusNode{Node: n, ServedRevisions: n.ServedRevisions}); string(got) != string(want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	n.ServedRevisions = map[string]uint64{}
	if got, _ := json.Marshal(statusNode{Node: n, ServedRevisions: n.ServedRevisions}); strings.Contains(string(got), "served_revisions") {
		t.Errorf("empty served_revisions printed: %s", got)
	}
}
