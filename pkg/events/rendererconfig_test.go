package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// Only routing may ask a renderer for its live config, and the renderer
// answers to the requester's inbox alone.
func TestRendererConfigRequestPermissions(t *testing.T) {
	srv := eventstest.StartSecured(t, "")
	v := &violations{}
	renderer := srv.ConnectAs(t, events.ServiceRenderer, nats.ErrorHandler(v.handler))
	sub, err := renderer.Subscribe(events.RendererConfig("n1"), func(m *nats.Msg) {
		b, _ := json.Marshal(events.NodeConfig{Node: "n1", Version: 3, Hash: "h", Files: []events.ConfigFile{{Path: "nginx.conf", Content: "events {}\n"}}})
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := renderer.Flush(); err != nil {
		t.Fatal(err)
	}
	if v.wait(events.RendererConfig("n1")) {
		t.Fatal("the renderer may not subscribe to its config subject")
	}

	for _, tc := range []struct {
		who    string
		answer bool
	}{
		{events.ServiceRouting, true},
		{events.ServiceClient, false},
		{events.ServiceHealth, false},
		{events.ServiceMetrics, false},
	} {
		t.Run(tc.who, func(t *testing.T) {
			cv := &violations{}
			nc := srv.ConnectAs(t, tc.who, nats.ErrorHandler(cv.handler))
			msg, err := nc.Request(events.RendererConfig("n1"), nil, time.Second)
			if !tc.answer {
				if err == nil {
					t.Fatalf("%s got an answer: %s", tc.who, msg.Data)
				}
				if !cv.wait(events.RendererConfig("n1")) {
					t.Errorf("no permissions violation reported to %s", tc.who)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.who, err)
			}
			var got events.NodeConfig
			if err := json.Unmarshal(msg.Data, &got); err != nil || got.Version != 3 || len(got.Files) != 1 {
				t.Errorf("answer %s (%v)", msg.Data, err)
			}
		})
	}

	// Answering is not publishing: the renderer may not write to an inbox
	// that sent it no request.
	if err := renderer.Publish("_INBOX.forged", []byte("{}")); err == nil {
		_ = renderer.Flush()
	}
	if !v.wait("_INBOX.forged") {
		t.Error("the renderer published to an inbox that asked it nothing")
	}
}
