package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

func TestNewChecksConfig(t *testing.T) {
	good := Config{SyslogAddr: "127.0.0.1:5514", Window: 10 * time.Second, MaxInstances: 100}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"empty address", func(c *Config) { c.SyslogAddr = "" }, "ORCHESTRY_METRICS_SYSLOG_ADDR"},
		{"address without port", func(c *Config) { c.SyslogAddr = "127.0.0.1" }, "ORCHESTRY_METRICS_SYSLOG_ADDR"},
		{"zero window", func(c *Config) { c.Window = 0 }, "ORCHESTRY_METRICS_WINDOW"},
		{"window over an hour", func(c *Config) { c.Window = 2 * time.Hour }, "ORCHESTRY_METRICS_WINDOW"},
		{"no instances", func(c *Config) { c.MaxInstances = 0 }, "ORCHESTRY_METRICS_MAX_INSTANCES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := New(&nats.Conn{}, cfg, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// hostile is one datagram per drop reason, and the counter it must raise.
func hostile(known string) []struct {
	reason string
	data   []byte
} {
	frame := func(s string) []byte { return []byte(syslogFrame + s) }
	return []struct {
		reason string
		data   []byte
	}{
		{"oversized", frame(strings.Repeat("x", 9000))},
		{"bad_frame", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"bad_json", frame(`{"v":1,"app":`)},
		{"missing_field", frame(strings.Replace(jsonLine(known, "127.0.0.1:1", "200", "0.001"), `"app":"`+known+`",`, "", 1))},
		{"bad_field", frame(jsonLine("Bad_App", "127.0.0.1:1", "200", "0.001"))},
		{"misaligned", frame(strings.Replace(jsonLine(known, "127.0.0.1:1, 127.0.0.1:2", "200", "0.001"), `"upstream_status":"200"`, `"upstream_status":"502, 200, 200"`, 1))},
		{"bad_address", frame(jsonLine(known, "127.0.0.1:0", "200", "0.001"))},
		{"unknown_app", frame(jsonLine("ghost", "127.0.0.1:1", "200", "0.001"))},
	}
}

// sendHostile sends one datagram per drop reason and waits until each is
// counted once, and nothing else dropped.
func sendHostile(t *testing.T, svc *Service, known string) {
	t.Helper()
	cases := hostile(known)
	for _, c := range cases {
		sendUDP(t, svc.Addr(), c.data)
	}
	waitFor(t, 10*time.Second, "every hostile datagram counted", func() bool {
		return svc.Counters().Dropped() >= int64(len(cases))
	})
	snap := svc.Counters().Snapshot()
	for _, c := range cases {
		if snap[c.reason] != 1 {
			t.Errorf("counter %s = %d, want 1 (all: %v)", c.reason, snap[c.reason], snap)
		}
	}
	if snap["lines"] != 0 {
		t.Errorf("hostile datagrams counted as lines: %v", snap)
	}
}

// TestServiceWithoutNginx drives the service with hand-made datagrams: the
// routing it follows, the drops it counts and what it publishes.
func TestServiceWithoutNginx(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	got := collect(t, js, "web")
	svc := startService(t, nc, 300*time.Millisecond)

	publishRouting(t, js, events.RoutingState{
		App:       events.App{Metadata: events.Metadata{Name: "web"}},
		Instances: []events.Instance{{ID: "a", IP: "127.0.0.1", Port: 9001}},
		Revision:  1,
	})
	waitFor(t, 10*time.Second, "app web known", func() bool { return svc.agg.Known("web") })

	sendHostile(t, svc, "web")

	// The service still works: 20 good lines, one of them a retry.
	var good [][]byte
	for range 19 {
		good = append(good, []byte(syslogFrame+jsonLine("web", "127.0.0.1:9001", "200", "0.010")))
	}
	retry := strings.NewReplacer(
		`"upstream_addr":"127.0.0.1:9001"`, `"upstream_addr":"127.0.0.1:9002, 127.0.0.1:9001"`,
		`"upstream_status":"200"`, `"upstream_status":"502, 200"`,
		`"upstream_connect_time":"0.000"`, `"upstream_connect_time":"-, 0.000"`,
		`"upstream_header_time":"0.010"`, `"upstream_header_time":"-, 0.010"`,
		`"upstream_response_time":"0.010"`, `"upstream_response_time":"0.000, 0.010"`,
	).Replace(jsonLine("web", "127.0.0.1:9001", "200", "0.010"))
	good = append(good, []byte(syslogFrame+retry))
	sendUDP(t, svc.Addr(), good...)

	waitFor(t, 10*time.Second, "20 attempts published for 127.0.0.1:9001", func() bool {
		sum, _ := got.totals("127.0.0.1:9001")
		return sum.Requests >= 20
	})
	a, _ := got.totals("127.0.0.1:9001")
	b, _ := got.totals("127.0.0.1:9002")
	if a.Requests != 20 || a.Status2xx != 20 || a.Retries != 1 || a.Bytes != 2000 {
		t.Errorf("127.0.0.1:9001 = %+v", a)
	}
	if b.Requests != 1 || b.GatewayErrors != 1 || b.ConsecutiveGatewayErrors != 1 || b.Retries != 0 || b.Bytes != 0 {
		t.Errorf("127.0.0.1:9002 = %+v", b)
	}
	if n := svc.Counters().Lines.Load(); n != 20 {
		t.Errorf("lines = %d, want 20", n)
	}

	// Deleting the app makes its lines forged.
	publishRouting(t, js, events.RoutingState{App: events.App{Metadata: events.Metadata{Name: "web"}}, Deleted: true, Revision: 2})
	waitFor(t, 10*time.Second, "app web forgotten", func() bool { return !svc.agg.Known("web") })
	sendUDP(t, svc.Addr(), good[0])
	waitFor(t, 10*time.Second, "a line of a deleted app dropped", func() bool {
		return svc.Counters().UnknownApp.Load() == 2
	})
}
