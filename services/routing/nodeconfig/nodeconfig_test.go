package nodeconfig_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/nodeconfig"
)

func TestText(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  events.NodeConfig
		want string
	}{
		{"empty", events.NodeConfig{}, ""},
		{"sorted, each ending a line", events.NodeConfig{Files: []events.ConfigFile{
			{Path: "nginx.conf", Content: "events {}"}, {Path: "apps/web.conf", Content: "upstream app_web {}\n"}, {Path: "empty.conf"}}},
			"# file: apps/web.conf\nupstream app_web {}\n# file: empty.conf\n# file: nginx.conf\nevents {}\n"},
		{"omitted named", events.NodeConfig{Files: []events.ConfigFile{{Path: "a.conf", Content: "a\n"}}, Omitted: []string{"b.conf"}},
			"# file: a.conf\na\n# omitted (larger than one NATS message allows): b.conf\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeconfig.Text(tc.cfg); got != tc.want {
				t.Errorf("%q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestFetch(t *testing.T) {
	srv := eventstest.StartSecured(t, "")
	renderer := srv.ConnectAs(t, events.ServiceRenderer)
	answer := func(cfg events.NodeConfig) func(*nats.Msg) {
		return func(m *nats.Msg) {
			b, _ := json.Marshal(cfg)
			_ = m.Respond(b)
		}
	}
	for node, cfg := range map[string]events.NodeConfig{
		"n1":     {Node: "n1", Version: 2, Files: []events.ConfigFile{{Path: "nginx.conf", Content: "x"}}},
		"broken": {Node: "broken", Error: "cannot read"},
	} {
		if _, err := renderer.Subscribe(events.RendererConfig(node), answer(cfg)); err != nil {
			t.Fatal(err)
		}
	}
	// A renderer that never answers.
	if _, err := renderer.Subscribe(events.RendererConfig("mute"), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := renderer.Flush(); err != nil {
		t.Fatal(err)
	}
	c := nodeconfig.Client{NC: srv.ConnectAs(t, events.ServiceRouting), Timeout: 300 * time.Millisecond}
	for _, tc := range []struct {
		node    string
		version uint64
		noNode  bool
		err     bool
	}{
		{node: "n1", version: 2},
		{node: "absent", noNode: true, err: true},
		{node: "mute", noNode: true, err: true},
		{node: "broken", err: true},
		{node: "bad.node", err: true},
		{node: "*", err: true},
	} {
		t.Run(tc.node, func(t *testing.T) {
			cfg, err := c.Fetch(context.Background(), tc.node)
			if (err != nil) != tc.err || errors.Is(err, nodeconfig.ErrNoNode) != tc.noNode {
				t.Fatalf("err %v", err)
			}
			if cfg.Version != tc.version {
				t.Errorf("version %d", cfg.Version)
			}
		})
	}
}
