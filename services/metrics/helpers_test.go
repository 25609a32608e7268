package metrics

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// waitFor polls cond every 20ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startService runs a Service on a free loopback UDP port until the test
// ends, and waits until it listens.
func startService(t *testing.T, nc *nats.Conn, window time.Duration) *Service {
	t.Helper()
	svc, err := New(nc, Config{SyslogAddr: "127.0.0.1:0", Window: window, MaxInstances: 100, HTTPAddr: "127.0.0.1:0"},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
	})
	waitFor(t, 10*time.Second, "the syslog listener", func() bool { return svc.Addr() != nil })
	return svc
}

// publishRouting publishes the resolved state of an app.
func publishRouting(t *testing.T, js jetstream.JetStream, rs events.RoutingState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := events.Publish(ctx, js, "test", events.RoutingChanged(rs.App.Metadata.Name), rs); err != nil {
		t.Fatal(err)
	}
}

// collector gathers every metrics.upstream event of an app from the METRICS
// stream, decoded.
type collector struct {
	mu  sync.Mutex
	all []events.UpstreamMetrics
}

func collect(t *testing.T, js jetstream.JetStream, app string) *collector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamMetrics, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.MetricsUpstream(app)},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		ev, err := events.Decode(msg.Subject(), msg.Data())
		if err != nil {
			t.Errorf("bad metrics.upstream event: %v", err)
			return
		}
		c.mu.Lock()
		c.all = append(c.all, ev.Payload.(events.UpstreamMetrics))
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return c
}

func (c *collector) events() []events.UpstreamMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]events.UpstreamMetrics(nil), c.all...)
}

// totals sums an address's figures over every window; the runs and
// percentiles are those of the last window that listed it.
func (c *collector) totals(addr string) (sum events.InstanceTraffic, windows []events.InstanceTraffic) {
	for _, m := range c.events() {
		for _, in := range m.Instances {
			if in.Address != addr {
				continue
			}
			windows = append(windows, in)
			sum.Address = addr
			sum.Requests += in.Requests
			sum.Status2xx += in.Status2xx
			sum.Status3xx += in.Status3xx
			sum.Status4xx += in.Status4xx
			sum.Status5xx += in.Status5xx
			sum.GatewayErrors += in.GatewayErrors
			sum.Retries += in.Retries
			sum.Bytes += in.Bytes
			sum.Consecutive5xx = in.Consecutive5xx
			sum.ConsecutiveGatewayErrors = in.ConsecutiveGatewayErrors
		}
	}
	return sum, windows
}

// syslogFrame is how NGINX frames a line (tag=orchestry, nohostname).
const syslogFrame = "<190>Nov 25 09:30:00 orchestry: "

// sendUDP sends each datagram to addr.
func sendUDP(t *testing.T, addr *net.UDPAddr, datagrams ...[]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range datagrams {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
}

// jsonLine is a valid access log line of app with one attempt to addr.
func jsonLine(app, addr, status, rt string) string {
	return `{"v":1,"node":"test-node","app":"` + app + `","ts":"1795598063.848","status":"` + status +
		`","request_time":"` + rt + `","upstream_addr":"` + addr + `","upstream_status":"` + status +
		`","upstream_connect_time":"0.000","upstream_header_time":"` + rt + `","upstream_response_time":"` + rt +
		`","bytes_sent":"100"}`
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
