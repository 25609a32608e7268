package render

import (
	"strings"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

func FuzzRender(f *testing.F) {
	f.Add("X-Frame-Options", "DENY", "web.example.com", "10m", "hash", "request_uri", "10.0.0.1", 8080, 30.0, false)
	f.Add("X-A", `a"; return 200 "x`, "a b", "1m;", "hash", "cookie:a-b", "::1", 1, 0.001, true)
	f.Add("X-A", "#c", "*.x.io", "", "least_conn", "", "2001:db8::2", 65535, 3600.0, false)
	f.Add("X", "a\nb", "x.io", "1g", "hash", "header:X-Y", "1.2.3.4", 80, 0.0, true)
	f.Add("X", "a}b{c", "x.io", "1g", "hash", "${cookie_x}", "1.2.3.4", 80, -1.0, false)
	f.Fuzz(func(t *testing.T, hname, hval, domain, size, method, key, ip string, port int, timeout float64, ssl bool) {
		s := state("fz", events.AppSpec{LBMethod: method, HashKey: key, Networking: events.Networking{
			Domain: domain, MaxBodySize: size, Timeout: timeout, SSL: events.SSL{Enabled: ssl},
			Headers: map[string]string{hname: hval},
		}}, events.Instance{ID: "i1", IP: ip, Port: port})
		renderChecked(t, s)
	})
}

// renderChecked renders s: a refusal must carry context, and an accepted
// state must parse back to only the intended directives.
func renderChecked(t *testing.T, s events.RoutingState) {
	t.Helper()
	cfg, err := Render([]events.RoutingState{s}, testOpts())
	if err != nil {
		if !strings.HasPrefix(err.Error(), "render") {
			t.Fatalf("error without context: %v", err)
		}
		return
	}
	if err := checkParsed(cfg, []events.RoutingState{s}); err != nil {
		t.Fatalf("accepted input rendered unsafely: %v\n%s", err, serialize(cfg))
	}
}
